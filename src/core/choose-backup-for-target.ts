/**
 * Which backup a restore without -i starts from: the newest OK backup that ends before the
 * recovery target, and (when recovery follows the archive) lies on the history of the timeline
 * recovery will follow. Pure: the caller lists the backups and the archive's history files.
 *
 * "Ends before" per target kind, erring towards older backups (an older backup only replays
 * more WAL; a too-new one cannot stop in time, since recovery cannot stop before it is consistent):
 *   time   recovery_time (the last commit at or before the stop LSN) at or before the target;
 *          end_time when recovery_time is unknown (later than any commit in the backup)
 *   lsn    stop LSN at or before the target
 *   xid    recovery_xid below the target xid (both as 32-bit xids; a backup without one is skipped)
 *   name, immediate, latest, none: the newest OK backup
 */
import type { BackupRecord } from './backup-types.js';
import type { RecoveryTarget } from './recovery-settings.js';
import { knownPath, pathIncludes, resolveTargetTimeline, type TimelinePath } from './timeline-history.js';

export interface TimelineChoice {
  /** --recovery-target-timeline: 'latest' (default), 'current' or a number. */
  request: string | undefined;
  /** The path of each timeline whose history file the archive holds. */
  histories: ReadonlyMap<number, TimelinePath>;
}

export function chooseBackupForTarget(backups: readonly BackupRecord[], target: RecoveryTarget, timelines?: TimelineChoice): BackupRecord | undefined {
  const candidates = backups
    .filter((b) => b.status === 'OK' && b.stopLsn !== null)
    .sort((a, b) => b.startTime.getTime() - a.startTime.getTime() || (a.id < b.id ? 1 : -1));
  return candidates.find((b) => endsBefore(b, target) && (!timelines || !followsTimeline(target, b.stream) || onTargetTimeline(b, timelines)));
}

/** True when recovery from this backup to this target reads the archive beyond the backup's own WAL, following timelines. */
export function followsTimeline(target: RecoveryTarget, stream: boolean): boolean {
  if (target.kind === 'none') return !stream; // no target: a backup without its WAL replays the whole archive
  return target.kind !== 'immediate';
}

function endsBefore(b: BackupRecord, target: RecoveryTarget): boolean {
  switch (target.kind) {
    case 'time': {
      const t = b.recoveryTime ?? b.endTime;
      return t !== null && t.getTime() <= target.time.getTime();
    }
    case 'lsn':
      return b.stopLsn !== null && b.stopLsn <= target.lsn;
    case 'xid':
      return b.recoveryXid !== null && /^\d+$/.test(b.recoveryXid) && BigInt(b.recoveryXid) < (target.xid & 0xffffffffn);
    default:
      return true;
  }
}

function onTargetTimeline(b: BackupRecord, t: TimelineChoice): boolean {
  const tli = resolveTargetTimeline(t.request, b.timeline, new Set(t.histories.keys()));
  const path = knownPath(t.histories, tli, b.timeline);
  // An unknown history: keep the backup, the archive check names the missing file.
  return path === undefined || pathIncludes(path, b.timeline, b.stopLsn!);
}
