/**
 * `delete --delete-expired [--merge-expired] [--delete-wal] [--dry-run]`, and the same after a
 * backup. Reads as its steps:
 *
 *   1. plan     the instance's policy (set-config) over the catalog: keep, delete, merge, merged
 *               per backup, with the reason (core/retention.ts); a dry run stops after step 4's
 *               plan, having changed nothing
 *   2. delete   under the instance's exclusive lock, newest first (children before parents); a
 *               backup that gained a child since the plan (a backup taken meanwhile) stays
 *   3. merge    each merge target, oldest first, through the merge use case (which takes the lock
 *               itself, and removes the chain members no other backup depends on)
 *   4. wal      under the lock again: plan from the backups that are there now, remove the files
 *
 * Deleting before merging matters: an invalid backup below a merged chain goes first, or the
 * merge would keep the chain member it hangs from.
 */
import type { BackupMode, BackupStatus } from '../../core/backup-types.js';
import { planRetention, type BackupDecision, type RetentionBackup, type RetentionPolicy } from '../../core/retention.js';
import { removeBackup } from '../delete-backup.js';
import { instanceRetention } from '../instance-settings.js';
import { withInstanceLock } from '../instance-locking.js';
import { mergeBackup } from '../merge/merge-backup.js';
import type { RepoContext } from '../repo-context.js';
import { planWalCleanup, removeWalFiles, type WalRetentionResult } from './wal-retention.js';

export interface RetentionRequest {
  instance: string;
  deleteExpired: boolean;
  mergeExpired: boolean;
  deleteWal: boolean;
  dryRun: boolean;
  /** Workers of each merge. */
  threads: number;
  /** --wait: how long to wait for the instance's lock (undefined: fail at once). */
  waitSeconds?: number | undefined;
  now?: Date;
}

export interface RetentionDecisionView extends BackupDecision {
  mode: BackupMode;
  status: BackupStatus;
}

export interface RetentionResult {
  dryRun: boolean;
  policy: RetentionPolicy;
  /** False when neither redundancy nor window is set: no backup expires. */
  policySet: boolean;
  /** Per backup, newest first; empty with --delete-wal alone. */
  decisions: RetentionDecisionView[];
  /** Backups removed by step 2. */
  deleted: string[];
  /** Merge targets merged by step 3, and the chain members those merges removed. */
  merged: string[];
  mergedAway: string[];
  /** Planned deletions left in place, with why. */
  skipped: string[];
  wal: WalRetentionResult | undefined;
}

export async function applyRetention(ctx: RepoContext, req: RetentionRequest): Promise<RetentionResult> {
  // 1. plan
  const instance = ctx.catalog.requireInstance(req.instance);
  const policy = instanceRetention(instance);
  const now = req.now ?? new Date();
  const backups = ctx.catalog.listBackups(instance.name);
  const byId = new Map(backups.map((b) => [b.id, b]));
  const planned = req.deleteExpired || req.mergeExpired;
  const plan = planned ? planRetention(backups, policy, now, { mergeExpired: req.mergeExpired }) : undefined;
  const decisions = (plan?.decisions ?? []).map((d) => ({ ...d, mode: byId.get(d.id)!.mode, status: byId.get(d.id)!.status }));
  const result: RetentionResult = { dryRun: req.dryRun, policy, policySet: plan?.policySet ?? false, decisions, deleted: [], merged: [], mergedAway: [], skipped: [], wal: undefined };
  const toDelete = req.deleteExpired ? decisions.filter((d) => d.action === 'delete') : [];
  const toMerge = req.mergeExpired ? decisions.filter((d) => d.action === 'merge').reverse() : [];

  if (req.dryRun) {
    if (req.deleteWal) {
      // What stays once the plan has run: everything but what it deletes and what merges absorb.
      const gone = new Set([...toDelete.map((d) => d.id), ...decisions.filter((d) => d.action === 'merged').map((d) => d.id)]);
      const stays: RetentionBackup[] = backups.filter((b) => !gone.has(b.id)).map((b) => (toMerge.some((m) => m.id === b.id) ? { ...b, mode: 'FULL', parentId: null } : b));
      result.wal = await planWalCleanup(ctx, instance.name, instance.walSegSize, stays, policy.walDepth);
    }
    return result;
  }

  // 2. delete
  if (toDelete.length > 0) {
    await withInstanceLock(ctx, instance.name, 'delete', req.waitSeconds, async () => {
      for (const d of toDelete) {
        const b = ctx.catalog.getBackup(instance.name, d.id);
        if (!b) continue; // gone meanwhile
        // Planned children were removed before (newest first); any child left came after the plan.
        const child = ctx.catalog.childrenOf(instance.name, d.id)[0];
        if (child) {
          result.skipped.push(`${d.id}: backup ${child.id} depends on it`);
          ctx.reporter.warn(`backup ${d.id} is kept: backup ${child.id}, which is not to be deleted, depends on it`);
          continue;
        }
        await removeBackup(ctx, b);
        result.deleted.push(d.id);
      }
    });
  }

  // 3. merge
  for (const d of toMerge) {
    ctx.reporter.info(`merging the expired chain ${d.related.join(', ')} into backup ${d.id}`);
    const r = await mergeBackup(ctx, instance.name, d.id, req.threads, req.waitSeconds);
    result.merged.push(d.id);
    result.mergedAway.push(...r.deleted);
  }

  // 4. wal
  if (req.deleteWal) {
    await withInstanceLock(ctx, instance.name, 'delete', req.waitSeconds, async () => {
      const stays = ctx.catalog.listBackups(instance.name);
      result.wal = await planWalCleanup(ctx, instance.name, instance.walSegSize, stays, policy.walDepth);
      await removeWalFiles(ctx, instance.name, result.wal.files);
    });
  }
  return result;
}
