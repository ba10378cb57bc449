/**
 * The parent of an incremental backup: the one named with --parent, or the newest OK/DONE
 * backup of the instance in the history of the server's timeline. Refuses a parent of another
 * cluster, one off that history, and a server whose WAL position is behind the parent's end (a
 * cluster restored from the past: its pages could carry LSNs the parent already covers).
 *
 * The history: after a failover or a point-in-time restore, the server runs on a new timeline
 * that branched off an older one at a switch point. A backup of the older timeline that was
 * consistent at or before that point holds the state the new timeline grew from, so it is a
 * valid parent, as PostgreSQL 17's own incremental backups allow: every page changed since
 * carries a later LSN (DELTA), and the WAL and WAL summaries of the path name every change
 * (PAGE, PTRACK). One consistent after the switch point holds changes the new timeline never
 * had, and is refused.
 */
import type { BackupRecord, BackupStatus } from '../../core/backup-types.js';
import { formatLsn } from '../../core/lsn.js';
import { offPathReason, type TimelinePath } from '../../core/timeline-history.js';
import { PgkeepError } from '../../errors.js';
import type { RepoContext } from '../repo-context.js';

const PARENT_STATUSES: readonly BackupStatus[] = ['OK', 'DONE'];

export function chooseParent(ctx: RepoContext, instance: string, parentId: string | undefined, path: TimelinePath): BackupRecord {
  if (parentId) {
    const p = ctx.catalog.requireBackup(instance, parentId);
    if (!PARENT_STATUSES.includes(p.status)) {
      throw new PgkeepError('PARENT_INVALID', `backup ${p.id} is ${p.status} and cannot be a parent`, 'choose an OK backup with --parent, or validate this one');
    }
    return p;
  }
  // The newest timeline first: any backup of it is newer than those of the timelines before it,
  // and of those only the ones consistent by the switch point are in the history.
  for (const span of [...path.spans].reverse()) {
    const onSpan = ctx.catalog.listBackups(instance, { statuses: PARENT_STATUSES, timeline: span.tli });
    const parent = onSpan.find((b) => span.end === undefined || (b.stopLsn ?? b.startLsn) <= span.end);
    if (parent) return parent;
  }
  const why = ctx.catalog.newestBackup(instance, { statuses: PARENT_STATUSES }) ? `none of its OK backups is in the history of the server's timeline ${path.tli}` : 'it has no OK backup';
  throw new PgkeepError('PARENT_INVALID', `no valid parent for an incremental backup of instance ${instance}: ${why}`, 'take a FULL backup first (-b FULL)');
}

/**
 * The backup chooseParent will most likely choose, before the server's timeline is known: the
 * one named, or the newest OK backup on any timeline. Only a guess, to read its manifest early.
 */
export function likelyParent(ctx: RepoContext, instance: string, parentId: string | undefined): BackupRecord | undefined {
  if (parentId) return ctx.catalog.getBackup(instance, parentId);
  return ctx.catalog.newestBackup(instance, { statuses: PARENT_STATUSES });
}

export function assertParentFits(parent: BackupRecord, server: { systemIdentifier: string; path: TimelinePath; currentLsn: bigint }): void {
  if (parent.systemIdentifier !== server.systemIdentifier) {
    throw new PgkeepError('SYSTEM_ID_MISMATCH', `parent backup ${parent.id} belongs to system ${parent.systemIdentifier}, the server is system ${server.systemIdentifier}`, 'take a FULL backup of this cluster');
  }
  const parentEnd = parent.stopLsn ?? parent.startLsn;
  const offPath = offPathReason(server.path, parent.timeline, parentEnd);
  if (offPath !== undefined) {
    throw new PgkeepError('PARENT_INVALID', `parent backup ${parent.id} (timeline ${parent.timeline}) is not in the history of the server's timeline ${server.path.tli}: ${offPath}`, 'take a FULL backup, or name with --parent a backup from before the timeline switch');
  }
  if (server.currentLsn < parentEnd) {
    throw new PgkeepError('PARENT_INVALID', `the server's WAL position ${formatLsn(server.currentLsn)} is behind the end of parent backup ${parent.id} (${formatLsn(parentEnd)}): the cluster was restored from an older state`, 'take a FULL backup');
  }
}
