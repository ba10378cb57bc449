/**
 * Deleting a backup and, with it, every backup that depends on it (children first).
 * Each backup is marked DELETING in the repository before its files go, so an interrupted
 * delete is visible and can be run again; the catalog row goes last.
 */
import type { BackupRecord } from '../core/backup-types.js';
import { backupKey } from '../repository/layout.js';
import { withInstanceLock } from './instance-locking.js';
import { saveBackup, type RepoContext } from './repo-context.js';

export interface DeletePlan {
  backups: BackupRecord[];
}

export function planDelete(ctx: RepoContext, instance: string, id: string): DeletePlan {
  const target = ctx.catalog.requireBackup(instance, id);
  const descendants = ctx.catalog.descendantsOf(instance, id);
  // Children before parents: a crash part-way never leaves a child without its parent.
  const ordered = [...descendants].sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
  return { backups: [...ordered, target] };
}

/**
 * Deletes under the instance's exclusive lock (`waitSeconds`: --wait). The plan is made again
 * under the lock, since a backup taken while this waited may have become a child of the target;
 * returns what was deleted.
 */
export async function executeDelete(ctx: RepoContext, instance: string, plan: DeletePlan, waitSeconds?: number): Promise<DeletePlan> {
  const target = plan.backups[plan.backups.length - 1];
  if (!target) return plan;
  return withInstanceLock(ctx, instance, 'delete', waitSeconds, async () => {
    const now = planDelete(ctx, instance, target.id);
    for (const b of now.backups) await removeBackup(ctx, b);
    return now;
  });
}

/**
 * Removes one backup (the caller holds the instance lock): DELETING in the repository first, so
 * that an interrupted removal is visible and can be run again, then its files, then its row.
 */
export async function removeBackup(ctx: RepoContext, b: BackupRecord): Promise<void> {
  await saveBackup(ctx, { ...b, status: 'DELETING' });
  await ctx.store.removeTree(backupKey(b.instance, b.id));
  ctx.catalog.deleteBackup(b.instance, b.id);
}
