/**
 * A backup's recovery point: recovery_time and recovery_xid, what a restore without -i uses to
 * tell whether the backup ends before a recovery target. Read from the WAL: the backup's own
 * (stored `pg_wal/` segments of a --stream backup) first, then the archive.
 *
 *   recovery_xid   the xid of the last commit at or before the stop LSN
 *   recovery_time  that commit's time, or later: the latest commit or abort time between the
 *                  start and stop LSNs, because recovery_target_time stops at either kind, and
 *                  recovery cannot stop before the backup is consistent at its stop LSN
 *
 * The backup's range [start, stop) is read first. When it holds no commit (an idle server),
 * the scan goes back segment by segment, at most MAX_SEGMENTS_BACK, through the start segment
 * and the archive, to find the last commit before the start. It goes back no further than the
 * stop LSN of the latest earlier backup whose recovery point is known: with no commit after
 * that stop, that backup's last commit is this one's too (an idle server backed up on a
 * schedule reads only the WAL since its last backup). If none is found (no archive, no commit
 * in reach) both stay null: `restore` then compares the end time instead, which is later than
 * any commit the backup holds, so the choice stays safe.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { formatLsn, type Lsn } from '../../core/lsn.js';
import { isPgkeepError } from '../../errors.js';
import { majorOf, traitsForMajor } from '../../postgres/server-versions.js';
import { readWalRecords } from '../../postgres/wal/wal-reader.js';
import { parseXactCompletion, pgTimestampToUnixMicros } from '../../postgres/wal/record-kinds.js';
import { loadTimelinePath } from '../wal/archive-contents.js';
import { archiveSegments, backupSegments, firstOf, type SegmentOpener } from '../wal/wal-segment-sources.js';
import type { RepoContext } from '../repo-context.js';

const MAX_SEGMENTS_BACK = 8;

export interface RecoveryPoint {
  time: Date;
  xid: string;
}

/** Sets record.recoveryTime / recoveryXid; a failure to read them warns and leaves them null. */
export async function recordRecoveryPoint(ctx: RepoContext, record: BackupRecord, entries: readonly FileEntry[]): Promise<void> {
  try {
    const p = await findRecoveryPoint(ctx, record, entries);
    record.recoveryTime = p?.time ?? null;
    record.recoveryXid = p?.xid ?? null;
    if (!p) ctx.reporter.info(`backup ${record.id}: no commit found in the WAL before its stop LSN; recovery_time is unknown`);
  } catch (e) {
    ctx.reporter.warn(`backup ${record.id}: could not read its recovery point from WAL (${isPgkeepError(e) || e instanceof Error ? e.message : String(e)}); recovery_time and recovery_xid stay unknown`);
  }
}

export async function findRecoveryPoint(ctx: RepoContext, record: BackupRecord, entries: readonly FileEntry[]): Promise<RecoveryPoint | undefined> {
  if (record.stopLsn === null) return undefined;
  const path = await loadTimelinePath(ctx.store, record.instance, record.timeline);
  const archive = archiveSegments(ctx.store, record.instance, path, record.walSegSize);
  const open = record.stream ? firstOf(backupSegments(ctx.store, record, entries), archive) : archive;
  const inRange = (await scan(record, open, record.startLsn, record.stopLsn, false))!;
  if (inRange.commit) return { time: microsToDate(maxOf(inRange.commit.time, inRange.latestEnd)), xid: String(inRange.commit.xid) };

  // No commit while the backup ran: look back for the last one before it.
  const segSize = BigInt(record.walSegSize);
  const earlier = latestKnownPointBefore(ctx.catalog.listBackups(record.instance), record);
  const floor = earlier?.stopLsn ?? 0n;
  let upTo = record.startLsn;
  for (let n = 0; n <= MAX_SEGMENTS_BACK && upTo > floor; n++) {
    const segmentStart = ((upTo - 1n) / segSize) * segSize;
    const from = segmentStart > floor ? segmentStart : floor;
    const back = await scan(record, open, from, upTo, true);
    if (back === undefined) return undefined; // that segment is not available
    if (back.commit) return { time: microsToDate(maxOf(back.commit.time, inRange.latestEnd)), xid: String(back.commit.xid) };
    upTo = from;
  }
  if (!earlier || upTo > floor) return undefined;
  const latestEnd = inRange.latestEnd === undefined ? undefined : microsToDate(inRange.latestEnd);
  return { time: latestEnd !== undefined && latestEnd > earlier.recoveryTime ? latestEnd : earlier.recoveryTime, xid: earlier.recoveryXid };
}

type KnownPoint = BackupRecord & { stopLsn: Lsn; recoveryTime: Date; recoveryXid: string };

/**
 * The latest backup of `record`'s timeline that stopped at or before `record` started and whose
 * recovery point is known: that point is the last commit at or before its stop LSN.
 */
function latestKnownPointBefore(backups: readonly BackupRecord[], record: BackupRecord): KnownPoint | undefined {
  let best: KnownPoint | undefined;
  for (const b of backups) {
    if (b.id === record.id || b.timeline !== record.timeline || (b.status !== 'OK' && b.status !== 'DONE')) continue;
    if (b.stopLsn === null || b.stopLsn > record.startLsn || b.recoveryTime === null || b.recoveryXid === null) continue;
    if (!best || b.stopLsn > best.stopLsn) best = { ...b, stopLsn: b.stopLsn, recoveryTime: b.recoveryTime, recoveryXid: b.recoveryXid };
  }
  return best;
}

interface ScanResult {
  /** The last commit read: time in PostgreSQL microseconds. */
  commit: { time: bigint; xid: number } | undefined;
  /** The latest commit or abort time read. */
  latestEnd: bigint | undefined;
}

/** Transaction ends in [startLsn, endLsn); undefined when a segment is missing and `missingIsEnd`. */
async function scan(record: BackupRecord, open: SegmentOpener, startLsn: Lsn, endLsn: Lsn, missingIsEnd: boolean): Promise<ScanResult | undefined> {
  const traits = traitsForMajor(majorOf(record.serverVersionNum));
  const result: ScanResult = { commit: undefined, latestEnd: undefined };
  try {
    for await (const rec of readWalRecords({
      openSegment: open,
      tli: record.timeline,
      segSize: record.walSegSize,
      // XLOG_BLCKSZ: equal to BLCKSZ in every build pgkeep supports.
      blockSize: record.blockSize,
      major: traits.major,
      startLsn,
      endLsn,
      systemIdentifier: BigInt(record.systemIdentifier),
    })) {
      const x = parseXactCompletion(rec, traits);
      if (!x) continue;
      result.latestEnd = maxOf(x.time, result.latestEnd);
      if (x.kind === 'commit' || x.kind === 'commit-prepared') result.commit = { time: x.time, xid: x.xid };
    }
  } catch (e) {
    if (missingIsEnd && isPgkeepError(e) && e.code === 'WAL_MISSING') return undefined;
    if (isPgkeepError(e)) e.message = `${e.message} (reading ${formatLsn(startLsn)} to ${formatLsn(endLsn)})`;
    throw e;
  }
  return result;
}

function maxOf(a: bigint, b: bigint | undefined): bigint {
  return b !== undefined && b > a ? b : a;
}

/** Rounded up to the millisecond: a recovery_time never reads earlier than the commit it stands for. */
function microsToDate(pgMicros: bigint): Date {
  const unix = pgTimestampToUnixMicros(pgMicros);
  return new Date(Number((unix + 999n) / 1000n));
}
