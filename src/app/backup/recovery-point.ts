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
 *
 * Going back, a segment is read from the server's pg_wal first when the backup can see it: in
 * chunks backwards from its last record (the last commit is usually just before the start),
 * where the archive's copy is read, decompressed and parsed whole, 70-210 ms for a segment full
 * of writes. The last record of each segment is known from the prev-link of the first record
 * after it (the backup's start record, then the first record of the segment read before), so
 * no chunk starts in the zeros that pad a segment after a WAL switch. From the first segment
 * pg_wal cannot give in full (gone, recycled, cut short), the rest is read as before.
 *
 * A --stream backup reads its own range from pg_wal too, while its slot still holds it: then the
 * recovery point does not wait for the WAL to be copied, and take-backup reads it beside that
 * copy. Its stored segments are read only if pg_wal cannot give them.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { formatLsn, type Lsn } from '../../core/lsn.js';
import { errorMessage, isPgkeepError } from '../../errors.js';
import { majorOf, traitsForMajor } from '../../postgres/server-versions.js';
import { readWalRecords, type WalReadEnd } from '../../postgres/wal/wal-reader.js';
import { parseXactCompletion, pgTimestampToUnixMicros } from '../../postgres/wal/record-kinds.js';
import { loadTimelinePath } from '../wal/archive-contents.js';
import { archiveSegments, backupSegments, firstOf, serverWalSegments, type SegmentOpener } from '../wal/wal-segment-sources.js';
import type { RepoContext } from '../repo-context.js';

const MAX_SEGMENTS_BACK = 8;

/** The first chunk read backwards from the end of a range in pg_wal; each next one is four times larger. */
const FIRST_CHUNK_BYTES = 128 * 1024;

export interface RecoveryPoint {
  time: Date;
  xid: string;
}

/** Where a backup's WAL can be read, besides the archive. */
export interface RecoveryPointSources {
  /** The backup's entries, for its stored pg_wal segments (--stream); awaited only if they are read. */
  entries: readonly FileEntry[] | Promise<readonly FileEntry[]>;
  /** The data directory of the server backed up, whose pg_wal is read first going back. */
  pgdata?: string;
  /** The backup's slot still holds pg_wal from its start: read the backup's own range there first too. */
  rangeInPgWal?: boolean;
}

/** Sets record.recoveryTime / recoveryXid; a failure to read them warns and leaves them null. */
export async function recordRecoveryPoint(ctx: RepoContext, record: BackupRecord, sources: RecoveryPointSources): Promise<void> {
  try {
    const p = await findRecoveryPoint(ctx, record, sources);
    record.recoveryTime = p?.time ?? null;
    record.recoveryXid = p?.xid ?? null;
    if (!p) ctx.reporter.info(`backup ${record.id}: no commit found in the WAL before its stop LSN; recovery_time is unknown`);
  } catch (e) {
    ctx.reporter.warn(`backup ${record.id}: could not read its recovery point from WAL (${errorMessage(e)}); recovery_time and recovery_xid stay unknown`);
  }
}

export async function findRecoveryPoint(ctx: RepoContext, record: BackupRecord, sources: RecoveryPointSources): Promise<RecoveryPoint | undefined> {
  if (record.stopLsn === null) return undefined;
  const path = await loadTimelinePath(ctx.store, record.instance, record.timeline);
  const serverWal = sources.pgdata === undefined ? undefined : serverWalSegments(sources.pgdata, path, record.walSegSize);
  const archive = archiveSegments(ctx.store, record.instance, path, record.walSegSize);
  const stored: SegmentOpener = async (segNo) => backupSegments(ctx.store, record, await sources.entries)(segNo);
  const open = record.stream ? firstOf(stored, archive) : archive;
  const fromPgWal = serverWal && sources.rangeInPgWal ? await readWhole(record, serverWal, record.startLsn, record.stopLsn) : undefined;
  const inRange = fromPgWal ?? (await scan(record, open, record.startLsn, record.stopLsn, false))!;
  if (inRange.commit) return { time: microsToDate(maxOf(inRange.commit.time, inRange.latestEnd)), xid: String(inRange.commit.xid) };

  // No commit while the backup ran: look back for the last one before it.
  const segSize = BigInt(record.walSegSize);
  const earlier = latestKnownPointBefore(ctx, record);
  const floor = earlier?.stopLsn ?? 0n;
  let upTo = record.startLsn;
  // While pg_wal serves: where the last record before upTo begins (undefined: read the archive).
  // The range read from pg_wal began with the start record, whose prev-link that is.
  let top = fromPgWal ? fromPgWal.firstPrevLink : serverWal && (await prevLinkAt(record, serverWal, record.startLsn));
  for (let n = 0; n <= MAX_SEGMENTS_BACK && upTo > floor; n++) {
    const segmentStart = ((upTo - 1n) / segSize) * segSize;
    const from = segmentStart > floor ? segmentStart : floor;
    let back: ScanResult | undefined;
    if (serverWal && top !== undefined) {
      const read = top < from ? { result: { commit: undefined, latestEnd: undefined }, prevLink: top } : await lastCommitBackwards(record, serverWal, from, top);
      back = read?.result;
      top = read?.prevLink;
    }
    back ??= await scan(record, open, from, upTo, true);
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
function latestKnownPointBefore(ctx: RepoContext, record: BackupRecord): KnownPoint | undefined {
  const b = ctx.catalog.latestRecoveryPointBy(record.instance, record.timeline, record.startLsn, record.id);
  if (!b || b.stopLsn === null || b.recoveryTime === null || b.recoveryXid === null) return undefined;
  return { ...b, stopLsn: b.stopLsn, recoveryTime: b.recoveryTime, recoveryXid: b.recoveryXid };
}

interface ScanResult {
  /** The last commit read: time in PostgreSQL microseconds. */
  commit: { time: bigint; xid: number } | undefined;
  /** The latest commit or abort time read. */
  latestEnd: bigint | undefined;
}

/**
 * The last commit among the records that begin in [from, lastRecord] (within one segment), read
 * in chunks backwards from the record at `lastRecord`, each chunk forwards from a page start: the
 * reader skips the tail of a record begun before it, which the chunk before reads whole. The
 * first chunk holding a commit holds the last one. With no commit, `prevLink` is where the last
 * record before `from` begins (the prev-link of the first record read). Undefined when `open`
 * cannot give the whole range (a segment missing, recycled or cut short, a record that does not
 * check): the caller reads it elsewhere.
 */
async function lastCommitBackwards(record: BackupRecord, open: SegmentOpener, from: Lsn, lastRecord: Lsn): Promise<{ result: ScanResult; prevLink: Lsn | undefined } | undefined> {
  const pageSize = BigInt(record.blockSize);
  let end = lastRecord + 1n;
  let chunk = BigInt(FIRST_CHUNK_BYTES);
  let prevLink: Lsn | undefined;
  while (end > from) {
    const pageStart = end > chunk ? ((end - chunk) / pageSize) * pageSize : 0n;
    const start = pageStart > from ? pageStart : from;
    const found = await readWhole(record, open, start, end);
    if (!found) return undefined;
    if (found.commit) return { result: found, prevLink: undefined };
    prevLink = found.firstPrevLink ?? prevLink;
    end = start;
    chunk *= 4n;
  }
  return { result: { commit: undefined, latestEnd: undefined }, prevLink };
}

/**
 * Transaction ends in [startLsn, endLsn) when `open` gives all of it; undefined when it cannot
 * (a segment missing, recycled or cut short, a record that does not check): the caller reads
 * the range elsewhere.
 */
async function readWhole(record: BackupRecord, open: SegmentOpener, startLsn: Lsn, endLsn: Lsn): Promise<TransactionEnds | undefined> {
  let reached: WalReadEnd | undefined;
  try {
    const found = await readTransactionEnds(record, open, startLsn, endLsn, (e) => (reached = e));
    return reached?.reason === 'end-lsn' ? found : undefined;
  } catch {
    return undefined;
  }
}

/** Where the record before the one that begins at `lsn` begins (its prev-link); undefined when `open` cannot tell. */
async function prevLinkAt(record: BackupRecord, open: SegmentOpener, lsn: Lsn): Promise<Lsn | undefined> {
  try {
    return (await readTransactionEnds(record, open, lsn, lsn + 1n)).firstPrevLink;
  } catch {
    return undefined;
  }
}

/** Transaction ends in [startLsn, endLsn); undefined when a segment is missing and `missingIsEnd`. */
async function scan(record: BackupRecord, open: SegmentOpener, startLsn: Lsn, endLsn: Lsn, missingIsEnd: boolean): Promise<ScanResult | undefined> {
  try {
    return await readTransactionEnds(record, open, startLsn, endLsn);
  } catch (e) {
    if (missingIsEnd && isPgkeepError(e) && e.code === 'WAL_MISSING') return undefined;
    if (isPgkeepError(e)) e.message = `${e.message} (reading ${formatLsn(startLsn)} to ${formatLsn(endLsn)})`;
    throw e;
  }
}

/** A ScanResult, and the prev-link of the first record read. */
interface TransactionEnds extends ScanResult {
  firstPrevLink: Lsn | undefined;
}

/** The last commit and the latest commit or abort time among the records that begin in [startLsn, endLsn). */
async function readTransactionEnds(record: BackupRecord, open: SegmentOpener, startLsn: Lsn, endLsn: Lsn, onEnd?: (end: WalReadEnd) => void): Promise<TransactionEnds> {
  const traits = traitsForMajor(majorOf(record.serverVersionNum));
  const result: TransactionEnds = { commit: undefined, latestEnd: undefined, firstPrevLink: undefined };
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
    ...(onEnd ? { onEnd } : {}),
  })) {
    if (result.firstPrevLink === undefined) result.firstPrevLink = rec.prevLsn;
    const x = parseXactCompletion(rec, traits);
    if (!x) continue;
    result.latestEnd = maxOf(x.time, result.latestEnd);
    if (x.kind === 'commit' || x.kind === 'commit-prepared') result.commit = { time: x.time, xid: x.xid };
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
