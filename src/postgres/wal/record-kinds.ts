/**
 * What PITR and PAGE backups need to know about particular records, read from their main data.
 *
 * - Transaction (rmid 1) commit/abort records (access/xact.h): xl_xact_commit / xl_xact_abort
 *   start with xact_time (TimestampTz: microseconds since 2000-01-01); when xl_info has
 *   XLOG_XACT_HAS_INFO (0x80) a u32 xinfo follows, then optional parts in this order
 *   (ParseCommitRecord / ParseAbortRecord in rmgrdesc/xactdesc.c): dbinfo (dbId, tsId),
 *   subxacts (int n + n xids), relfilelocators (int n + n x 12 bytes: the relations dropped),
 *   dropped stats (15+, entry size per major), invalidations (commit only), twophase xid, ...
 * - XLOG (rmid 0) XLOG_RESTORE_POINT (0x70): xl_restore_point { rp_time TimestampTz, rp_name[64] }.
 * - Storage (rmid 2) XLOG_SMGR_CREATE 0x10: { RelFileLocator, ForkNumber int };
 *   XLOG_SMGR_TRUNCATE 0x20: { BlockNumber blkno, RelFileLocator, int flags } (catalog/storage_xlog.h).
 * - Database (rmid 4) (commands/dbcommands_xlog.h), record types per major in server-versions.ts:
 *   create (file copy) { db_id, tablespace_id, src_db_id, src_tablespace_id }; create (WAL log, 15+)
 *   { db_id, tablespace_id }; drop { db_id, int ntablespaces, tablespace_ids[] }.
 *
 * These records change relation files without (or beyond) block references; they carry
 * XLR_SPECIAL_REL_UPDATE, except commit/abort records, whose dropped relations are found here.
 */
import { dataViewOf } from '../byte-views.js';
import type { WalTraits } from '../server-versions.js';
import { XLR_SPECIAL_REL_UPDATE, corrupt, type WalRecord } from './wal-record.js';

export const RM_XLOG_ID = 0;
export const RM_XACT_ID = 1;
export const RM_SMGR_ID = 2;
export const RM_DBASE_ID = 4;

const XLOG_RESTORE_POINT = 0x70;
const XLOG_SMGR_CREATE = 0x10;
const XLOG_SMGR_TRUNCATE = 0x20;

const XLOG_XACT_OPMASK = 0x70;
const XLOG_XACT_HAS_INFO = 0x80;
const XLOG_XACT_COMMIT = 0x00;
const XLOG_XACT_ABORT = 0x20;
const XLOG_XACT_COMMIT_PREPARED = 0x30;
const XLOG_XACT_ABORT_PREPARED = 0x40;

const XACT_XINFO_HAS_DBINFO = 1 << 0;
const XACT_XINFO_HAS_SUBXACTS = 1 << 1;
const XACT_XINFO_HAS_RELFILELOCATORS = 1 << 2;
const XACT_XINFO_HAS_DROPPED_STATS = 1 << 8;
const XACT_XINFO_HAS_INVALS = 1 << 3;
const XACT_XINFO_HAS_TWOPHASE = 1 << 4;

const RELFILELOCATOR_SIZE = 12;
const SHARED_INVAL_MESSAGE_SIZE = 16;
const RESTORE_POINT_NAME_LENGTH = 64;

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC). */
export const PG_EPOCH_UNIX_MICROS = 946_684_800_000_000n;

export interface RelFileLocator {
  spcOid: number;
  dbOid: number;
  relNumber: number;
}

export type RelationChange =
  | { kind: 'create'; rel: RelFileLocator; fork: number }
  /** Main fork cut to `blocks` blocks; `forks` is SMGR_TRUNCATE_HEAP 1 | VM 2 | FSM 4 (the VM and FSM are cut to matching sizes). */
  | { kind: 'truncate'; rel: RelFileLocator; blocks: number; forks: number }
  | { kind: 'drop'; rel: RelFileLocator }
  | { kind: 'database-create'; dbOid: number; spcOid: number; strategy: 'file-copy' | 'wal-log' }
  | { kind: 'database-drop'; dbOid: number; spcOids: number[] }
  /** XLR_SPECIAL_REL_UPDATE on a record not understood here: copy what it may touch whole. */
  | { kind: 'special'; rmid: number; info: number };

export type XactKind = 'commit' | 'abort' | 'commit-prepared' | 'abort-prepared';

/** The kind of transaction end this record is, or undefined (prepare, assignment, other rmgrs). */
export function xactKind(rec: WalRecord): XactKind | undefined {
  if (rec.rmid !== RM_XACT_ID) return undefined;
  switch (rec.info & XLOG_XACT_OPMASK) {
    case XLOG_XACT_COMMIT:
      return 'commit';
    case XLOG_XACT_ABORT:
      return 'abort';
    case XLOG_XACT_COMMIT_PREPARED:
      return 'commit-prepared';
    case XLOG_XACT_ABORT_PREPARED:
      return 'abort-prepared';
    default:
      return undefined;
  }
}

export function isXactCommitOrAbort(rec: WalRecord): boolean {
  return xactKind(rec) !== undefined;
}

/** xact_time of a commit/abort record, microseconds since 2000-01-01 UTC; undefined for other records. */
export function commitTimestamp(rec: WalRecord): bigint | undefined {
  if (!isXactCommitOrAbort(rec)) return undefined;
  requireLength(rec, 8);
  return dataViewOf(rec.mainData).getBigInt64(rec.mainData.byteOffset, true);
}

/** A PostgreSQL timestamp (microseconds since 2000-01-01) as microseconds since 1970-01-01. */
export function pgTimestampToUnixMicros(pgMicros: bigint): bigint {
  return pgMicros + PG_EPOCH_UNIX_MICROS;
}

export interface XactCompletion {
  kind: XactKind;
  /** xact_time, microseconds since 2000-01-01 UTC. */
  time: bigint;
  /** The transaction that ended: the prepared transaction's xid for *-prepared, else the record's. */
  xid: number;
  subxids: number[];
  droppedRelations: RelFileLocator[];
}

/** Parses a commit/abort record's variable parts as ParseCommitRecord does; undefined for other records. */
export function parseXactCompletion(rec: WalRecord, traits: WalTraits): XactCompletion | undefined {
  const kind = xactKind(rec);
  if (kind === undefined) return undefined;
  const d = rec.mainData;
  const v = dataViewOf(d);
  const o = d.byteOffset;
  requireLength(rec, 8);
  const time = v.getBigInt64(o, true);
  let pos = 8;
  let xinfo = 0;
  if ((rec.info & XLOG_XACT_HAS_INFO) !== 0) {
    requireLength(rec, pos + 4);
    xinfo = v.getUint32(o + pos, true);
    pos += 4;
  }
  if ((xinfo & XACT_XINFO_HAS_DBINFO) !== 0) pos += 8;
  const subxids: number[] = [];
  if ((xinfo & XACT_XINFO_HAS_SUBXACTS) !== 0) {
    const n = readCount(rec, pos);
    requireLength(rec, pos + 4 + n * 4);
    for (let i = 0; i < n; i++) subxids.push(v.getUint32(o + pos + 4 + i * 4, true));
    pos += 4 + n * 4;
  }
  const droppedRelations: RelFileLocator[] = [];
  if ((xinfo & XACT_XINFO_HAS_RELFILELOCATORS) !== 0) {
    const n = readCount(rec, pos);
    requireLength(rec, pos + 4 + n * RELFILELOCATOR_SIZE);
    for (let i = 0; i < n; i++) droppedRelations.push(readLocator(d, pos + 4 + i * RELFILELOCATOR_SIZE));
    pos += 4 + n * RELFILELOCATOR_SIZE;
  }
  if ((xinfo & XACT_XINFO_HAS_DROPPED_STATS) !== 0) pos += 4 + readCount(rec, pos) * traits.walXactStatsItemSize;
  // Abort records never carry invalidations (xact.h: "No invalidation messages needed").
  if ((xinfo & XACT_XINFO_HAS_INVALS) !== 0 && (kind === 'commit' || kind === 'commit-prepared')) {
    pos += 4 + readCount(rec, pos) * SHARED_INVAL_MESSAGE_SIZE;
  }
  let xid = rec.xid;
  if ((xinfo & XACT_XINFO_HAS_TWOPHASE) !== 0) {
    requireLength(rec, pos + 4);
    xid = v.getUint32(o + pos, true);
  }
  return { kind, time, xid, subxids, droppedRelations };
}

/** The name of an XLOG_RESTORE_POINT record (pg_create_restore_point), or undefined. */
export function restorePointName(rec: WalRecord): string | undefined {
  if (rec.rmid !== RM_XLOG_ID || (rec.info & 0xf0) !== XLOG_RESTORE_POINT) return undefined;
  requireLength(rec, 8 + RESTORE_POINT_NAME_LENGTH);
  const name = rec.mainData.subarray(8, 8 + RESTORE_POINT_NAME_LENGTH);
  const nul = name.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? name : name.subarray(0, nul));
}

/** rp_time of an XLOG_RESTORE_POINT record, microseconds since 2000-01-01, or undefined. */
export function restorePointTime(rec: WalRecord): bigint | undefined {
  if (restorePointName(rec) === undefined) return undefined;
  return dataViewOf(rec.mainData).getBigInt64(rec.mainData.byteOffset, true);
}

/** The record may change relation files beyond its block references (XLR_SPECIAL_REL_UPDATE). */
export function isSpecialRelUpdate(rec: WalRecord): boolean {
  return (rec.info & XLR_SPECIAL_REL_UPDATE) !== 0;
}

/**
 * Changes to relation files that the record's block references do not describe, for a PAGE
 * backup (which then copies those relations, or databases, whole); undefined when there are none.
 */
export function relationChangesWithoutBlocks(rec: WalRecord, traits: WalTraits): RelationChange[] | undefined {
  const d = rec.mainData;
  const v = dataViewOf(d);
  const o = d.byteOffset;
  const type = rec.info & 0xf0;
  switch (rec.rmid) {
    case RM_SMGR_ID:
      if (type === XLOG_SMGR_CREATE) {
        requireLength(rec, 16);
        return [{ kind: 'create', rel: readLocator(d, 0), fork: v.getInt32(o + 12, true) }];
      }
      if (type === XLOG_SMGR_TRUNCATE) {
        requireLength(rec, 20);
        return [{ kind: 'truncate', rel: readLocator(d, 4), blocks: v.getUint32(o, true), forks: v.getInt32(o + 16, true) }];
      }
      break;
    case RM_DBASE_ID:
      if (type === traits.walDbaseCreateFileCopy || type === traits.walDbaseCreateWalLog) {
        requireLength(rec, 8);
        const strategy = type === traits.walDbaseCreateWalLog ? 'wal-log' : 'file-copy';
        return [{ kind: 'database-create', dbOid: v.getUint32(o, true), spcOid: v.getUint32(o + 4, true), strategy }];
      }
      if (type === traits.walDbaseDrop) {
        const n = readCount(rec, 4);
        requireLength(rec, 8 + n * 4);
        const spcOids: number[] = [];
        for (let i = 0; i < n; i++) spcOids.push(v.getUint32(o + 8 + i * 4, true));
        return [{ kind: 'database-drop', dbOid: v.getUint32(o, true), spcOids }];
      }
      break;
    case RM_XACT_ID: {
      const completion = parseXactCompletion(rec, traits);
      if (completion === undefined || completion.droppedRelations.length === 0) return undefined;
      return completion.droppedRelations.map((rel) => ({ kind: 'drop', rel }));
    }
  }
  return isSpecialRelUpdate(rec) ? [{ kind: 'special', rmid: rec.rmid, info: rec.info }] : undefined;
}

function readLocator(d: Uint8Array, at: number): RelFileLocator {
  const v = dataViewOf(d);
  const o = d.byteOffset + at;
  return { spcOid: v.getUint32(o, true), dbOid: v.getUint32(o + 4, true), relNumber: v.getUint32(o + 8, true) };
}

/** A non-negative int32 count at `at`, checked against the data present. */
function readCount(rec: WalRecord, at: number): number {
  requireLength(rec, at + 4);
  const n = dataViewOf(rec.mainData).getInt32(rec.mainData.byteOffset + at, true);
  if (n < 0 || n > rec.mainData.length) throw corrupt(rec.lsn, `invalid count ${n} in main data`);
  return n;
}

function requireLength(rec: WalRecord, n: number): void {
  if (rec.mainData.length < n) throw corrupt(rec.lsn, `main data of ${rec.mainData.length} bytes, expected at least ${n}`);
}
