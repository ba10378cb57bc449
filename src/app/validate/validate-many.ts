import type { BackupRecord } from '../../core/backup-types.js';
import type { RepoContext } from '../repo-context.js';
import { validateBackup, type ValidationResult } from './validate-backup.js';

export interface ValidateRequest {
  instance?: string | undefined;
  backupId?: string | undefined;
  threads: number;
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
  const results: ValidationResult[] = [];
  for (const t of targets) {
    const current = ctx.catalog.requireBackup(t.instance, t.id);
    results.push(await validateBackup(ctx, current, req.threads));
  }
  return results;
}

function requireAnywhere(ctx: RepoContext, id: string): BackupRecord {
  const b = ctx.catalog.findBackupById(id);
  if (b) return b;
  return ctx.catalog.requireBackup('', id); // throws BACKUP_NOT_FOUND with its hint
}
