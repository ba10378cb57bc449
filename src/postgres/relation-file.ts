/**
 * Relation data files: where they live under PGDATA and what their names mean.
 *
 * Locations: `global/` (the global tablespace), `base/<dbOid>/` (the default tablespace) and
 * `pg_tblspc/<spcOid>/PG_<major>_<catversion>/<dbOid>/`. Names: `<relNumber>[_fsm|_vm|_init]
 * [.<segNo>]`. Name parsing mirrors PostgreSQL 17's parse_filename_for_nontemp_relation
 * (reinit.c): no leading zeros and no `.0` segment, so that one relation has exactly one name,
 * and numbers must fit in 32 bits. Anything else (pg_filenode.map, PG_VERSION, pg_internal.init,
 * temporary relations `t3_16384`) is not a relation data file.
 */

/** Blocks per segment file (RELSEG_SIZE): 1 GiB with 8 KiB blocks, PostgreSQL's default build. */
export const RELSEG_BLOCKS = 131072;

/** GLOBALTABLESPACE_OID: the tablespace of `global/`. */
export const GLOBAL_TABLESPACE_OID = 1664;
/** DEFAULTTABLESPACE_OID: the tablespace of `base/`. */
export const DEFAULT_TABLESPACE_OID = 1663;

export const FORK_NAMES = ['main', 'fsm', 'vm', 'init'] as const;
export type ForkName = (typeof FORK_NAMES)[number];

/** One segment file of one fork of one relation. */
export interface RelationFile {
  spcOid: number;
  dbOid: number;
  relNumber: number;
  fork: ForkName;
  segNo: number;
}

/** The parts of a relation file name, without its location. */
export interface RelationFileName {
  relNumber: number;
  fork: ForkName;
  segNo: number;
}

const MAX_UINT32 = 0xffffffff;
const RELATION_FILE_NAME = /^([1-9][0-9]{0,9})(?:_(fsm|vm|init))?(?:\.([1-9][0-9]{0,9}))?$/;
const OID = /^[1-9][0-9]{0,9}$/;
/** TABLESPACE_VERSION_DIRECTORY: `PG_<major>_<catversion>` (PG_9.6_201608131 before 10). */
const TABLESPACE_VERSION_DIR = /^PG_[0-9]+(?:\.[0-9]+)?_[0-9]+$/;

/** Parse a file name such as `2674`, `16401_fsm.2` or `16384_init`. */
export function parseRelationFileName(name: string): RelationFileName | undefined {
  const m = RELATION_FILE_NAME.exec(name);
  if (m === null) return undefined;
  const relNumber = Number(m[1]);
  const segNo = m[3] === undefined ? 0 : Number(m[3]);
  if (relNumber > MAX_UINT32 || segNo > MAX_UINT32) return undefined;
  const fork = (m[2] ?? 'main') as ForkName;
  return { relNumber, fork, segNo };
}

/**
 * Parse a '/'-separated path relative to PGDATA (`global/1262`, `base/16384/2674.1`,
 * `pg_tblspc/16400/PG_15_202209061/16384/16401_fsm.2`); undefined for anything that is not a
 * relation data file.
 */
export function parseRelationPath(relPath: string): RelationFile | undefined {
  const parts = relPath.split('/');
  let spcOid: number;
  let dbOid: number;
  let name: string | undefined;
  if (parts.length === 2 && parts[0] === 'global') {
    spcOid = GLOBAL_TABLESPACE_OID;
    dbOid = 0;
    name = parts[1];
  } else if (parts.length === 3 && parts[0] === 'base' && isOid(parts[1])) {
    spcOid = DEFAULT_TABLESPACE_OID;
    dbOid = Number(parts[1]);
    name = parts[2];
  } else if (
    parts.length === 5 &&
    parts[0] === 'pg_tblspc' &&
    isOid(parts[1]) &&
    TABLESPACE_VERSION_DIR.test(parts[2] ?? '') &&
    isOid(parts[3])
  ) {
    spcOid = Number(parts[1]);
    dbOid = Number(parts[3]);
    name = parts[4];
  } else {
    return undefined;
  }
  const file = name === undefined ? undefined : parseRelationFileName(name);
  if (file === undefined) return undefined;
  return { spcOid, dbOid, relNumber: file.relNumber, fork: file.fork, segNo: file.segNo };
}

/** The file name of `rel` (`16401_fsm.2`), without its directory. */
export function relationFileName(rel: RelationFileName): string {
  const fork = rel.fork === 'main' ? '' : `_${rel.fork}`;
  const seg = rel.segNo === 0 ? '' : `.${rel.segNo}`;
  return `${rel.relNumber}${fork}${seg}`;
}

/**
 * The block number within the whole fork, which is what page checksums, WAL block references
 * and WAL summaries use.
 */
export function absoluteBlockNumber(segNo: number, blockInSegment: number): number {
  return segNo * RELSEG_BLOCKS + blockInSegment;
}

/**
 * Whether incremental backups store this file page by page (the design's choice). fsm pages are
 * changed without WAL, so neither their LSN nor a WAL-based change map says they changed. vm
 * bits are cleared by heap records without a block reference to the vm page and without a new
 * LSN on it, so neither says so for vm pages either (PostgreSQL's walsummarizer.c records block
 * references and limit blocks, with no case for those bits); and vm forks are tiny (one page
 * covers about 32 thousand heap pages). Both are copied whole when they changed.
 */
export function isDataFileForBlockIncremental(rel: RelationFile): boolean {
  return rel.fork === 'main' || rel.fork === 'init';
}

/** `spc/db/rel/fork`: the same for every segment of one fork, for grouping segments. */
export function relationKey(rel: RelationFile): string {
  return `${rel.spcOid}/${rel.dbOid}/${rel.relNumber}/${rel.fork}`;
}

function isOid(s: string | undefined): boolean {
  return s !== undefined && OID.test(s) && Number(s) <= MAX_UINT32;
}
