import type { BackupRecord } from '../../core/backup-types.js';
import { withInstanceLock } from '../instance-locking.js';
import type { OperationProgress } from '../progress.js';
import type { RepoContext } from '../repo-context.js';
import { validateBackup, type ValidationResult } from './validate-backup.js';

export interface ValidateRequest {
  instance?: string | undefined;
  backupId?: string | undefined;
  threads: number;
  /** --wait: seconds to wait for each instance's shared lock (Infinity: no limit); undefined fails at once. */
  waitSeconds?: number | undefined;
  /** Told each file as it is checked, backup by backup (--progress). */
  progress?: OperationProgress | undefined;
  /** --skip-block-validation: judge no page (stored and content checksums still are checked). */
  skipBlockValidation?: boolean | undefined;
}

const SKIPPED = new Set(['RUNNING', 'ERROR', 'DELETING', 'MERGING']);

/** Validates one backup (-i), an instance's backups, or every backup, oldest first so that parents come before children. */
export async function validateBackups(ctx: RepoContext, req: ValidateRequest): Promise<ValidationResult[]> {
  let targets: BackupRecord[];
  if (req.backupId) {
    targets = [req.instance ? ctx.catalog.requireBackup(req.instance, req.backupId) : requireAnywhere(ctx, req.backupId)];
  } else {
    if (req.instance) ctx.catalog.requireInstance(req.instance);
    targets = ctx.catalog.listBackups(req.instance).filter((b) => !SKIPPED.has(b.status)).reverse();
  }
  // One instance at a time, under its shared lock, so that no merge or delete changes a chain
  // while it is read; another instance's writer is not waited for meanwhile.
  const byInstance = new Map<string, BackupRecord[]>();
  for (const t of targets) byInstance.set(t.instance, [...(byInstance.get(t.instance) ?? []), t]);
  const results: ValidationResult[] = [];
  for (const [instance, backups] of byInstance) {
    await withInstanceLock(ctx, instance, 'validate', req.waitSeconds, async () => {
      for (const t of backups) {
        // Listed before the lock: a backup deleted meanwhile is skipped, unless it was asked for by id.
        const current = req.backupId ? ctx.catalog.requireBackup(t.instance, t.id) : ctx.catalog.getBackup(t.instance, t.id);
        if (current) results.push(await validateBackup(ctx, current, req.threads, { progress: req.progress, checkPages: !req.skipBlockValidation }));
      }
    });
  }
  return results;
}

function requireAnywhere(ctx: RepoContext, id: string): BackupRecord {
  const b = ctx.catalog.findBackupById(id);
  if (b) return b;
  return ctx.catalog.requireBackup('', id); // throws BACKUP_NOT_FOUND with its hint
}
