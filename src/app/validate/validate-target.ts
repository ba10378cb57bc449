/**
 * `validate --recovery-target-...`: would a restore reach this target? The same choice of
 * backup and the same archive check as `restore`, without writing anything. Unreachable
 * targets throw the error the restore would have refused with.
 */
import type { BackupRecord } from '../../core/backup-types.js';
import type { RecoveryRequest } from '../../core/recovery-settings.js';
import { parseRecoveryTarget } from '../../core/recovery-settings.js';
import { PgkeepError } from '../../errors.js';
import { checkArchiveForTarget, type ArchiveCheck } from '../restore/check-archive-for-target.js';
import { describeTarget, selectBackupForTarget } from '../restore/select-backup-for-target.js';
import type { RepoContext } from '../repo-context.js';

export interface TargetValidationRequest {
  instance?: string | undefined;
  backupId?: string | undefined;
  recovery: RecoveryRequest;
}

export interface TargetValidation {
  backup: BackupRecord;
  target: string;
  check: ArchiveCheck;
}

export async function validateTarget(ctx: RepoContext, req: TargetValidationRequest): Promise<TargetValidation> {
  const target = parseRecoveryTarget(req.recovery);
  const instance = resolveInstance(ctx, req);
  const backup = await selectBackupForTarget(ctx, instance, req.backupId, req.recovery);
  const check = await checkArchiveForTarget(ctx, backup, req.recovery);
  return { backup, target: describeTarget(target), check };
}

/** --instance, else the instance of -i, else the only instance there is. */
function resolveInstance(ctx: RepoContext, req: TargetValidationRequest): string {
  if (req.instance) return ctx.catalog.requireInstance(req.instance).name;
  if (req.backupId) {
    const b = ctx.catalog.findBackupById(req.backupId);
    if (b) return b.instance;
    ctx.catalog.requireBackup('', req.backupId); // throws BACKUP_NOT_FOUND with its hint
  }
  const all = ctx.catalog.listInstances();
  if (all.length === 1) return all[0]!.name;
  throw new PgkeepError('INVALID_ARGUMENT', 'validating a recovery target needs --instance', 'name the instance whose backups and archive to check');
}
