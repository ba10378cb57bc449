/**
 * The parent of an incremental backup: the one named with --parent, or the newest OK/DONE
 * backup of the instance on the server's timeline. Refuses a parent of another cluster, one on
 * another timeline, and a server whose WAL position is behind the parent's end (a cluster
 * restored from the past: its pages could carry LSNs the parent already covers).
 */
import type { BackupRecord, BackupStatus } from '../../core/backup-types.js';
import { formatLsn } from '../../core/lsn.js';
import { PgkeepError } from '../../errors.js';
import type { RepoContext } from '../repo-context.js';

const PARENT_STATUSES: readonly BackupStatus[] = ['OK', 'DONE'];

export function chooseParent(ctx: RepoContext, instance: string, parentId: string | undefined, timeline: number): BackupRecord {
  if (parentId) {
    const p = ctx.catalog.requireBackup(instance, parentId);
    if (!PARENT_STATUSES.includes(p.status)) {
      throw new PgkeepError('PARENT_INVALID', `backup ${p.id} is ${p.status} and cannot be a parent`, 'choose an OK backup with --parent, or validate this one');
    }
    return p;
  }
  const parent = ctx.catalog.newestBackup(instance, { statuses: PARENT_STATUSES, timeline });
  if (!parent) {
    const why = ctx.catalog.newestBackup(instance, { statuses: PARENT_STATUSES }) ? `none of its OK backups is on the server's timeline ${timeline}` : 'it has no OK backup';
    throw new PgkeepError('PARENT_INVALID', `no valid parent for an incremental backup of instance ${instance}: ${why}`, 'take a FULL backup first (-b FULL)');
  }
  return parent;
}

/**
 * The backup chooseParent will most likely choose, before the server's timeline is known: the
 * one named, or the newest OK backup on any timeline. Only a guess, to read its manifest early.
 */
export function likelyParent(ctx: RepoContext, instance: string, parentId: string | undefined): BackupRecord | undefined {
  if (parentId) return ctx.catalog.getBackup(instance, parentId);
  return ctx.catalog.newestBackup(instance, { statuses: PARENT_STATUSES });
}

export function assertParentFits(parent: BackupRecord, server: { systemIdentifier: string; timeline: number; currentLsn: bigint }): void {
  if (parent.systemIdentifier !== server.systemIdentifier) {
    throw new PgkeepError('SYSTEM_ID_MISMATCH', `parent backup ${parent.id} belongs to system ${parent.systemIdentifier}, the server is system ${server.systemIdentifier}`, 'take a FULL backup of this cluster');
  }
  if (parent.timeline !== server.timeline) {
    throw new PgkeepError('PARENT_INVALID', `parent backup ${parent.id} is on timeline ${parent.timeline}, the server on ${server.timeline}`, 'take a FULL backup after a timeline switch');
  }
  const parentEnd = parent.stopLsn ?? parent.startLsn;
  if (server.currentLsn < parentEnd) {
    throw new PgkeepError('PARENT_INVALID', `the server's WAL position ${formatLsn(server.currentLsn)} is behind the end of parent backup ${parent.id} (${formatLsn(parentEnd)}): the cluster was restored from an older state`, 'take a FULL backup');
  }
}
