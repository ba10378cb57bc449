/**
 * Before a restore writes anything: can recovery from this backup reach the target with the
 * WAL the archive holds? Refuses with the first missing segment named (WAL_MISSING), or with
 * the archive's last position when the target lies beyond it.
 *
 *   --stream backup, no target or immediate   its own WAL suffices: the archive is not read
 *   immediate (backup without --stream)        the segments from start to stop LSN
 *   latest, or no target without --stream     every segment from the backup to the archive's end
 *   lsn                                        every segment to the target's, and a record at or past it
 *   time, xid, name                            the WAL read from the stop LSN until the record
 *                                              recovery stops at (locate-target.ts)
 *
 * A --stream backup carries the WAL to its stop LSN, but its last segment only up to there:
 * replay beyond needs the archive from the stop LSN's segment on. Segments are named along the
 * timeline path recovery follows (--recovery-target-timeline, default latest: see
 * core/timeline-history.ts): each from the newest timeline on the path that covers it.
 */
import type { BackupRecord } from '../../core/backup-types.js';
import { followsTimeline } from '../../core/choose-backup-for-target.js';
import { formatLsn, segmentNumber, type Lsn } from '../../core/lsn.js';
import { parseRecoveryTarget, type RecoveryRequest, type RecoveryTarget } from '../../core/recovery-settings.js';
import { knownPath, pathIncludes, resolveTargetTimeline, segmentFileOnPath, timelineOfSegment, type TimelinePath } from '../../core/timeline-history.js';
import { PgkeepError } from '../../errors.js';
import { loadArchiveContents, type ArchiveContents } from '../wal/archive-contents.js';
import { archiveSegments } from '../wal/wal-segment-sources.js';
import type { RepoContext } from '../repo-context.js';
import { locateTarget } from './locate-target.js';
import { describeTarget } from './select-backup-for-target.js';

export interface ArchiveCheck {
  /** False when the backup's own WAL suffices (a --stream backup, no target or immediate). */
  archiveNeeded: boolean;
  /** The timeline recovery follows. */
  timeline: number;
  /** The archived segments recovery reads, first and last, and how many; undefined when none. */
  firstSegment: string | undefined;
  lastSegment: string | undefined;
  segmentCount: number;
  /** Timelines those segments belong to, ascending. */
  timelines: number[];
  /** The record recovery stops at (time, xid, name, lsn), or undefined (end of the archive, immediate). */
  stopRecordLsn: Lsn | undefined;
}

export async function checkArchiveForTarget(ctx: RepoContext, backup: BackupRecord, recovery: RecoveryRequest): Promise<ArchiveCheck> {
  const target = parseRecoveryTarget(recovery);
  const stop = backup.stopLsn;
  if (stop === null) throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${backup.id} has no stop LSN`, 'choose an OK backup (see `pgkeep show`)');
  if (backup.stream && (target.kind === 'none' || target.kind === 'immediate')) {
    return { archiveNeeded: false, timeline: backup.timeline, firstSegment: undefined, lastSegment: undefined, segmentCount: 0, timelines: [], stopRecordLsn: undefined };
  }
  assertNotBeforeBackup(backup, target, stop);

  const segSize = backup.walSegSize;
  const seg = (lsn: Lsn) => segmentNumber(lsn, segSize);
  const contents = await loadArchiveContents(ctx.store, backup.instance, segSize);
  const path = timelinePath(backup, contents, followsTimeline(target, backup.stream) ? recovery.timeline : 'current', stop);
  const name = (s: bigint) => segmentFileOnPath(path, s, segSize);
  const first = backup.stream ? seg(stop) : seg(backup.startLsn);
  const lastArchived = lastSegmentOnPath(contents, path, segSize, first);
  const what = `restore backup ${backup.id} to ${describeTarget(target)}`;

  const missing = (s: bigint, gapOnly = false) =>
    gapOnly || (lastArchived !== undefined && s <= lastArchived)
      ? new PgkeepError('WAL_MISSING', `WAL segment ${name(s)} is missing from the archive (needed to ${what})`, 'push it again from the server\'s pg_wal if it still has it (archive-push), or restore a backup taken after it')
      : beyondArchive(target, lastArchived === undefined ? undefined : name(lastArchived), lastArchived === undefined ? undefined : (lastArchived + 1n) * BigInt(segSize), 'its end');
  /** `own`: the backup's own WAL, or a range ending at the archive's end: a hole, never "beyond". */
  const requireSegments = (from: bigint, to: bigint, own = false) => {
    for (let s = from; s <= to; s++) if (!contents.names.has(name(s))) throw missing(s, own);
  };
  const result = (last: bigint | undefined, stopRecordLsn: Lsn | undefined): ArchiveCheck => ({
    archiveNeeded: true,
    timeline: path.tli,
    firstSegment: last === undefined || last < first ? undefined : name(first),
    lastSegment: last === undefined || last < first ? undefined : name(last),
    segmentCount: last === undefined || last < first ? 0 : Number(last - first + 1n),
    timelines: last === undefined || last < first ? [] : timelinesBetween(path, first, last, segSize),
    stopRecordLsn,
  });

  switch (target.kind) {
    case 'immediate':
      requireSegments(first, seg(stop - 1n), true);
      return result(seg(stop - 1n), undefined);
    case 'none':
    case 'latest': {
      // The backup's own WAL (unless it carries it), then whatever the archive holds after it.
      const own = backup.stream ? undefined : seg(stop - 1n);
      const last = own === undefined || (lastArchived !== undefined && lastArchived > own) ? lastArchived : own;
      if (last !== undefined) requireSegments(first, last, true);
      return result(last, undefined);
    }
    default: {
      if (!backup.stream) requireSegments(first, seg(stop - 1n), true);
      let from = stop;
      if (target.kind === 'lsn') {
        // Every segment up to the target's must be there; read only the target's for the record at or past it.
        requireSegments(first, seg(target.lsn));
        const targetSegStart = seg(target.lsn) * BigInt(segSize);
        if (targetSegStart > from) from = targetSegStart;
      }
      const open = archiveSegments(ctx.store, backup.instance, path, segSize);
      const found = await locateTarget(backup, open, path.tli, from, target, recovery.inclusive ?? true);
      if (found.found) return result(seg(found.endLsn - 1n), found.lsn);
      if (found.missingSegNo !== undefined) throw missing(found.missingSegNo);
      const endSeg = found.lastLsn === undefined ? undefined : seg(found.lastLsn);
      throw beyondArchive(target, endSeg === undefined ? undefined : name(endSeg), found.lastLsn, 'where valid WAL ends');
    }
  }
}

/** Recovery cannot stop before the backup is consistent: a target inside or before the backup is unreachable from it. */
function assertNotBeforeBackup(backup: BackupRecord, target: RecoveryTarget, stop: Lsn): void {
  const tooEarly =
    target.kind === 'time' && backup.recoveryTime !== null && backup.recoveryTime.getTime() > target.time.getTime()
      ? `its last commit is at ${backup.recoveryTime.toISOString()}`
      : target.kind === 'lsn' && target.lsn < stop
        ? `it is consistent only from LSN ${formatLsn(stop)}`
        : undefined;
  if (tooEarly) {
    throw new PgkeepError('INVALID_ARGUMENT', `backup ${backup.id} ends after the recovery target (${describeTarget(target)}): ${tooEarly}`, 'choose an older backup, or leave out -i to let pgkeep choose');
  }
}

function timelinePath(backup: BackupRecord, contents: ArchiveContents, request: string | undefined, stop: Lsn): TimelinePath {
  const tli = resolveTargetTimeline(request, backup.timeline, new Set(contents.histories.keys()));
  const path = knownPath(contents.histories, tli, backup.timeline);
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  if (!path) {
    throw new PgkeepError('WAL_MISSING', `timeline history file ${hex(tli)}.history for recovery target timeline ${tli} is not in the archive`, 'check the timeline number (see `pgkeep show --archive`)');
  }
  if (!pathIncludes(path, backup.timeline, stop)) {
    const span = path.spans.find((s) => s.tli === backup.timeline);
    const why = span ? `which left timeline ${backup.timeline} at ${formatLsn(span.end!)}, before the backup's stop LSN ${formatLsn(stop)}` : `whose history does not include timeline ${backup.timeline}`;
    throw new PgkeepError('INVALID_ARGUMENT', `backup ${backup.id} (timeline ${backup.timeline}) cannot reach timeline ${tli}, ${why}`, 'choose a backup taken before the timeline switch, or --recovery-target-timeline current');
  }
  return path;
}

/** The highest archived segment at or after `from` on the path, or undefined. */
function lastSegmentOnPath(contents: ArchiveContents, path: TimelinePath, segSize: number, from: bigint): bigint | undefined {
  let last: bigint | undefined;
  for (const span of path.spans) {
    for (const s of contents.segments.get(span.tli) ?? []) {
      if (s >= from && timelineOfSegment(path, s, segSize) === span.tli && (last === undefined || s > last)) last = s;
    }
  }
  return last;
}

function timelinesBetween(path: TimelinePath, first: bigint, last: bigint, segSize: number): number[] {
  const tlis = new Set<number>([timelineOfSegment(path, first, segSize), timelineOfSegment(path, last, segSize)]);
  for (const span of path.spans) {
    const begin = segmentNumber(span.begin, segSize);
    if (begin > first && begin <= last) tlis.add(span.tli);
  }
  return [...tlis].sort((a, b) => a - b);
}

function beyondArchive(target: RecoveryTarget, lastName: string | undefined, lastLsn: Lsn | undefined, where: string): PgkeepError {
  const end = lastName === undefined ? 'the archive holds no WAL after the backup' : `the last archived position is ${formatLsn(lastLsn!)} (segment ${lastName}, ${where})`;
  return new PgkeepError('WAL_MISSING', `recovery target ${describeTarget(target)} is beyond the end of the archive: ${end}`, 'choose an earlier target, or wait until the WAL holding it is archived (pg_switch_wal() closes the current segment)');
}
