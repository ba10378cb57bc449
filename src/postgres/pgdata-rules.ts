/**
 * What a physical backup copies from a data directory, as pure functions over '/'-separated
 * paths relative to PGDATA and over directory listings. The I/O walker asks these; it never
 * decides on its own.
 *
 * The rules follow pg_basebackup (sendDir in src/backend/backup/basebackup.c):
 * - the contents of a few top-level directories are rebuilt at server start, so only the empty
 *   directory is kept (also pg_wal: WAL comes from the archive or the backup's own stream);
 * - a few files are never copied, wherever they are (pg_basebackup matches them by name in every
 *   directory, and so do we); pgkeep adds three top-level files of its own;
 * - in database directories, every fork of an unlogged relation except `_init` (the server
 *   resets unlogged relations from the init fork after a restore) and temporary relations;
 * - symbolic links are kept only in pg_tblspc; pg_wal and the directories above are recorded as
 *   plain directories even when they are links; pg_basebackup skips any other link with a warning.
 */
import { parseRelationFileName } from './relation-file.js';

/** Top-level directories whose contents are skipped; the empty directory is kept. */
export const EXCLUDED_DIRECTORY_CONTENTS: ReadonlySet<string> = new Set([
  'pg_stat_tmp',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_subtrans',
  'pg_wal',
]);

export const PG_WAL_DIR = 'pg_wal';
export const PG_TBLSPC_DIR = 'pg_tblspc';
/** Copied last and restored last: a half-restored directory without it cannot be started. */
export const PG_CONTROL_PATH = 'global/pg_control';
/** PG_TEMP_FILE_PREFIX: temporary files and directories (sorts, hashes) in any directory. */
export const TEMP_FILE_PREFIX = 'pgsql_tmp';

/** Files skipped in every directory, as in basebackup.c's excludeFiles (exact names). */
const EXCLUDED_FILE_NAMES: ReadonlySet<string> = new Set([
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  'backup_label',
  'tablespace_map',
  'backup_manifest',
  'postmaster.pid',
  'postmaster.opts',
]);
/** Prefixes skipped in every directory: the relcache init file (and its temporary copies). */
const EXCLUDED_FILE_PREFIXES = ['pg_internal.init', TEMP_FILE_PREFIX] as const;
/**
 * Skipped at the top level only: pgkeep's additions, not pg_basebackup's. A restore writes its
 * own backup_label and signal files; an old label or a signal from the source would mislead the
 * restored server.
 */
const EXCLUDED_TOP_LEVEL_FILE_NAMES: ReadonlySet<string> = new Set(['backup_label.old', 'recovery.signal', 'standby.signal']);
/** The ptrack extension's change map and its temporary copies, in global/ only. */
const PTRACK_MAP_PREFIX = 'ptrack.map';

const TEMP_RELATION_NAME = /^t[0-9]+_[0-9]+(?:_(?:fsm|vm|init))?(?:\.[0-9]+)?$/;
const DIGITS = /^[0-9]+$/;
const TABLESPACE_VERSION_DIR = /^PG_[0-9]+(?:\.[0-9]+)?_[0-9]+$/;

/** Whether a file called `name` is skipped (`isTopLevel`: it is directly in PGDATA). */
export function isExcludedFileName(name: string, isTopLevel: boolean): boolean {
  if (EXCLUDED_FILE_NAMES.has(name)) return true;
  for (const prefix of EXCLUDED_FILE_PREFIXES) {
    if (name.startsWith(prefix)) return true;
  }
  return isTopLevel && EXCLUDED_TOP_LEVEL_FILE_NAMES.has(name);
}

/** Whether the file at `relPath` is skipped: isExcludedFileName plus `global/ptrack.map*`. */
export function isExcludedFile(relPath: string): boolean {
  const slash = relPath.lastIndexOf('/');
  const name = relPath.slice(slash + 1);
  if (isExcludedFileName(name, slash === -1)) return true;
  return relPath.startsWith('global/') && slash === 6 && name.startsWith(PTRACK_MAP_PREFIX);
}

/**
 * `t<backendId>_<relNumber>[_fork][.segNo]`: a temporary relation, which the server deletes
 * at start (looks_like_temp_rel_name in fd.c).
 */
export function isTemporaryRelationName(name: string): boolean {
  return TEMP_RELATION_NAME.test(name);
}

/** `base/<oid>` or `pg_tblspc/<oid>/PG_<major>_<catversion>/<oid>`: holds one database's relations. */
export function isDatabaseDirectory(relPath: string): boolean {
  const parts = relPath.split('/');
  if (parts.length === 2) return parts[0] === 'base' && DIGITS.test(parts[1] ?? '');
  return (
    parts.length === 4 &&
    parts[0] === PG_TBLSPC_DIR &&
    DIGITS.test(parts[1] ?? '') &&
    TABLESPACE_VERSION_DIR.test(parts[2] ?? '') &&
    DIGITS.test(parts[3] ?? '')
  );
}

/**
 * The directory a tablespace uses for one server version inside its location
 * (TABLESPACE_VERSION_DIRECTORY). Only this one is backed up: others are left over from other
 * versions, e.g. after pg_upgrade.
 */
export function tablespaceVersionDirectory(majorVersion: number, catalogVersionNo: number): string {
  return `PG_${majorVersion}_${catalogVersionNo}`;
}

/**
 * Directories a restore creates empty under pg_wal (pg_basebackup sends archive_status; the WAL
 * summarizer of 17+ needs summaries).
 */
export function walDirectoriesToCreate(majorVersion: number): string[] {
  const dirs = [PG_WAL_DIR, `${PG_WAL_DIR}/archive_status`];
  if (majorVersion >= 17) dirs.push(`${PG_WAL_DIR}/summaries`);
  return dirs;
}

/**
 * Given the entry names of one database directory, the ones to copy: drops every fork and
 * segment of an unlogged relation except its init fork (a relation is unlogged when
 * `<relNumber>_init` exists), temporary relations, temporary files and excluded files such as
 * pg_internal.init. Order is kept.
 */
export function filterDatabaseDirectory(names: readonly string[]): string[] {
  const unlogged = new Set<number>();
  for (const name of names) {
    const rel = parseRelationFileName(name);
    if (rel !== undefined && rel.fork === 'init' && rel.segNo === 0) unlogged.add(rel.relNumber);
  }
  return names.filter((name) => {
    if (isExcludedFileName(name, false) || isTemporaryRelationName(name)) return false;
    const rel = parseRelationFileName(name);
    return rel === undefined || rel.fork === 'init' || !unlogged.has(rel.relNumber);
  });
}

export type EntryType = 'file' | 'directory' | 'symlink';

/**
 * copy: copy the file, or walk the directory.
 * skip: leave out, and do not walk into it.
 * empty-directory: record as a directory (even when it is a symlink, as pg_basebackup does for
 *   pg_wal) and leave its contents out.
 * tablespace-link: a link in pg_tblspc: record the link target; walk its version directory.
 * unsupported-link: a link anywhere else; pg_basebackup skips it with a warning.
 *
 * Unlogged relations need the whole directory listing: see filterDatabaseDirectory.
 * pg_control is 'copy', but copy it last (PG_CONTROL_PATH).
 */
export type PathRule = 'copy' | 'skip' | 'empty-directory' | 'tablespace-link' | 'unsupported-link';

/** What to do with the entry at `relPath` (relative to PGDATA, '/'-separated) of type `type`. */
export function classifyPath(relPath: string, type: EntryType): PathRule {
  const parts = relPath.split('/');
  const name = parts[parts.length - 1] ?? '';
  const top = parts[0] ?? '';
  if (EXCLUDED_DIRECTORY_CONTENTS.has(top)) return parts.length === 1 ? 'empty-directory' : 'skip';
  // Names are matched before the entry type, as basebackup.c does: a pgsql_tmp directory or a
  // pg_internal.init link is skipped like a file.
  if (isExcludedFile(relPath)) return 'skip';
  if (parts.length > 1 && isTemporaryRelationName(name) && isDatabaseDirectory(parts.slice(0, -1).join('/'))) {
    return 'skip';
  }
  if (type === 'symlink') {
    return parts.length === 2 && top === PG_TBLSPC_DIR ? 'tablespace-link' : 'unsupported-link';
  }
  return 'copy';
}
