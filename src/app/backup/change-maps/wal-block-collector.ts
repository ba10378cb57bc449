/**
 * Gathers, record by record, what a WAL range says about relation files, and answers as a
 * ChangeMap (core/change-map.ts) once the range is read.
 *
 * Blocks are kept per relation (spcOid, dbOid, relNumber) and, within it, per main/init fork and
 * 1 GB segment. Marks that make files 'all' are kept at the level they concern, never per file:
 * a relation (created, truncated or dropped: every fork and segment, including segments that do
 * not exist yet), a database directory (created or dropped), or the whole cluster (a record that
 * may change relation files in ways this reader cannot locate). Lookups parse the path asked
 * about, so a tablespace's `PG_<major>_<catversion>` directory never has to be known here.
 *
 * fsm and vm forks are not kept: the copy compares those files whole with the parent anyway
 * (fsm pages change without WAL), so the map says 'all' for them.
 */
import type { ChangeMap, FileChanges } from '../../../core/change-map.js';
import { RELSEG_BLOCKS, parseRelationPath, type ForkName } from '../../../postgres/relation-file.js';
import { BlockSet } from './block-set.js';

const MAIN_FORK = 0;
const INIT_FORK = 3;
const FORK_NUMBERS: Record<ForkName, number> = { main: 0, fsm: 1, vm: 2, init: 3 };

interface RelationBlocks {
  /** Every file of the relation is read whole. */
  whole: boolean;
  /** Keyed by fileKey(fork, segNo). */
  files: Map<number, BlockSet>;
}

export interface CollectedCounts {
  /** Block references seen (main and init forks), duplicates included. */
  blockRefs: number;
  /** Segment files with a block list. */
  files: number;
  /** Distinct blocks in those lists (a file gone whole counts what it had). */
  blocks: number;
  relationsWhole: number;
  databasesWhole: number;
}

export class WalBlockCollector {
  private readonly relations = new Map<string, RelationBlocks>();
  private readonly databases = new Set<string>();
  private clusterReason: string | undefined;
  private blockRefs = 0;
  // Consecutive records mostly touch the same relation: skip building its key then.
  private lastSpc = -1;
  private lastDb = -1;
  private lastRel = -1;
  private lastEntry: RelationBlocks | undefined;

  /** A block reference: `block` is the block number within the fork, as WAL has it. */
  addBlock(spcOid: number, dbOid: number, relNumber: number, fork: number, block: number): void {
    if (fork !== MAIN_FORK && fork !== INIT_FORK) {
      // fsm/vm: copied changed-or-parent anyway. Anything else is no fork PostgreSQL has: be safe.
      if (fork > INIT_FORK) this.wholeRelation(spcOid, dbOid, relNumber);
      return;
    }
    this.blockRefs++;
    const entry = this.entry(spcOid, dbOid, relNumber);
    if (entry.whole) return;
    const segNo = Math.floor(block / RELSEG_BLOCKS);
    const key = fileKey(fork, segNo);
    let set = entry.files.get(key);
    if (set === undefined) {
      set = new BlockSet();
      entry.files.set(key, set);
    }
    set.add(block - segNo * RELSEG_BLOCKS);
  }

  /** Every fork and segment of the relation is to be read whole. */
  wholeRelation(spcOid: number, dbOid: number, relNumber: number): void {
    const entry = this.entry(spcOid, dbOid, relNumber);
    entry.whole = true;
    entry.files.clear();
  }

  /** Every relation file of one database directory (base/<db>, or its tablespace's) is read whole. */
  wholeDatabase(spcOid: number, dbOid: number): void {
    this.databases.add(`${spcOid}/${dbOid}`);
  }

  /** Nothing the range says can be trusted to locate changes: every relation file is read whole. */
  wholeCluster(reason: string): void {
    this.clusterReason ??= reason;
  }

  /** Why the map vouches for no file, when it does not. */
  get wholeClusterReason(): string | undefined {
    return this.clusterReason;
  }

  counts(): CollectedCounts {
    let files = 0;
    let blocks = 0;
    let relationsWhole = 0;
    for (const r of this.relations.values()) {
      if (r.whole) relationsWhole++;
      for (const s of r.files.values()) {
        files++;
        blocks += s.size;
      }
    }
    return { blockRefs: this.blockRefs, files, blocks, relationsWhole, databasesWhole: this.databases.size };
  }

  toChangeMap(): ChangeMap {
    return { source: 'wal', changes: (path) => this.changes(path) };
  }

  private changes(path: string): FileChanges | undefined {
    if (this.clusterReason !== undefined) return 'all';
    const f = parseRelationPath(path);
    // Not a relation file: the map cannot vouch for it.
    if (f === undefined) return 'all';
    if (this.databases.has(`${f.spcOid}/${f.dbOid}`)) return 'all';
    const r = this.relations.get(`${f.spcOid}/${f.dbOid}/${f.relNumber}`);
    if (r === undefined) return undefined;
    if (r.whole || (f.fork !== 'main' && f.fork !== 'init')) return 'all';
    return r.files.get(fileKey(FORK_NUMBERS[f.fork], f.segNo))?.list();
  }

  private entry(spcOid: number, dbOid: number, relNumber: number): RelationBlocks {
    if (this.lastEntry !== undefined && spcOid === this.lastSpc && dbOid === this.lastDb && relNumber === this.lastRel) return this.lastEntry;
    const key = `${spcOid}/${dbOid}/${relNumber}`;
    let entry = this.relations.get(key);
    if (entry === undefined) {
      entry = { whole: false, files: new Map() };
      this.relations.set(key, entry);
    }
    this.lastSpc = spcOid;
    this.lastDb = dbOid;
    this.lastRel = relNumber;
    this.lastEntry = entry;
    return entry;
  }
}

/** One number per (fork, segment): forks are 0-3, segments below 2^30. */
function fileKey(fork: number, segNo: number): number {
  return segNo * 4 + fork;
}
