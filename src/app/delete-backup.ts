/**
 * Deleting a backup and, with it, every backup that depends on it (children first).
 * Each backup is marked DELETING in the repository before its files go, so an interrupted
 * delete is visible and can be run again; the catalog row goes last.
 */
import type { BackupRecord } from '../core/backup-types.js';
import { acquireInstanceLock } from '../repository/instance-lock.js';
import { backupKey } from '../repository/layout.js';
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

export async function executeDelete(ctx: RepoContext, instance: string, plan: DeletePlan): Promise<void> {
  const lock = await acquireInstanceLock(ctx.root, instance, 'delete', (o) => ctx.reporter.warn(`breaking the lock left by pid ${o.pid} (${o.command}), which is gone`));
  try {
    for (const b of plan.backups) await removeBackup(ctx, b);
  } finally {
    await lock.release();
  }
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
