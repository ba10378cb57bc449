/**
 * The backup a restore (or `validate --recovery-target-...`) starts from: -i as given (if its
 * status allows), else the newest OK backup that ends before the target, on the history of the
 * timeline recovery will follow (core/choose-backup-for-target.ts).
 */
import type { BackupRecord } from '../../core/backup-types.js';
import { USABLE_STATUSES } from '../../core/chain.js';
import { chooseBackupForTarget, followsTimeline } from '../../core/choose-backup-for-target.js';
import { parseRecoveryTarget, type RecoveryRequest, type RecoveryTarget } from '../../core/recovery-settings.js';
import { formatLsn } from '../../core/lsn.js';
import { PgkeepError } from '../../errors.js';
import { loadArchiveContents } from '../wal/archive-contents.js';
import type { RepoContext } from '../repo-context.js';

export async function selectBackupForTarget(ctx: RepoContext, instance: string, backupId: string | undefined, recovery: RecoveryRequest): Promise<BackupRecord> {
  if (backupId) {
    const b = ctx.catalog.requireBackup(instance, backupId);
    if (!USABLE_STATUSES.has(b.status)) {
      throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${b.id} is ${b.status} and cannot be restored`, 'choose an OK backup (see `pgkeep show`), or validate this one');
    }
    return b;
  }
  const all = ctx.catalog.listBackups(instance);
  const ok = all.filter((b) => b.status === 'OK');
  if (ok.length === 0) throw new PgkeepError('NO_VALID_BACKUP', `instance ${instance} has no OK backup to restore`, 'take a backup, or validate an existing one with `pgkeep validate`');
  const target = parseRecoveryTarget(recovery);
  // Only read the archive's history files when some candidate's recovery would follow them.
  const needsHistories = ok.some((b) => followsTimeline(target, b.stream));
  const histories = needsHistories ? (await loadArchiveContents(ctx.store, instance, ok[0]!.walSegSize)).histories : undefined;
  const chosen = chooseBackupForTarget(ok, target, histories ? { request: recovery.timeline, histories } : undefined);
  if (!chosen) {
    throw new PgkeepError('NO_VALID_BACKUP', `no OK backup of instance ${instance} ends before the recovery target (${describeTarget(target)})${histories ? ' on the history of the timeline recovery follows' : ''}`, 'choose a later target, or a backup with -i (see `pgkeep show` for recovery_time and stop_lsn)');
  }
  return chosen;
}

export function describeTarget(t: RecoveryTarget): string {
  switch (t.kind) {
    case 'time':
      return `time ${t.time.toISOString()}`;
    case 'lsn':
      return `LSN ${formatLsn(t.lsn)}`;
    case 'xid':
      return `xid ${t.xid}`;
    case 'name':
      return `restore point "${t.name}"`;
    case 'none':
      return 'the end of the WAL';
    default:
      return t.kind;
  }
}
