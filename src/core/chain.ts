/**
 * Backup chains: an incremental backup restores through its parents down to a FULL backup.
 * Pure functions over catalog records; the callers do the reading.
 */
import type { BackupRecord, BackupStatus } from './backup-types.js';
import { PgkeepError } from '../errors.js';

/** Statuses whose files are complete and may serve a restore, a merge or an export. */
export const USABLE_STATUSES: ReadonlySet<BackupStatus> = new Set(['OK', 'DONE', 'MERGING']);

/**
 * The chain of `target`: [target, its parent, ..., the FULL backup], newest first.
 * Refuses a missing parent, a parent that is not usable, a parent of another cluster, and cycles.
 */
export function resolveChain(target: BackupRecord, lookup: (id: string) => BackupRecord | undefined): BackupRecord[] {
  const chain = [target];
  const seen = new Set([target.id]);
  let current = target;
  while (current.mode !== 'FULL') {
    const parentId = current.parentId;
    if (parentId === null) {
      throw new PgkeepError('BACKUP_CORRUPT', `incremental backup ${current.id} names no parent`, 'validate the backup; take a new FULL backup');
    }
    const parent = lookup(parentId);
    if (!parent) {
      throw new PgkeepError('PARENT_INVALID', `backup ${current.id} needs its parent ${parentId}, which is missing`, 'the chain is broken: restore an older backup or take a new FULL backup');
    }
    if (seen.has(parent.id)) throw new PgkeepError('BACKUP_CORRUPT', `the chain of backup ${target.id} loops at ${parent.id}`, 'rebuild the catalog with `pgkeep catalog rebuild`');
    if (!USABLE_STATUSES.has(parent.status)) {
      throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${target.id} depends on ${parent.id}, which is ${parent.status}`, 'validate the chain with `pgkeep validate`, or restore another backup');
    }
    if (parent.systemIdentifier !== target.systemIdentifier) {
      throw new PgkeepError('BACKUP_CORRUPT', `backup ${current.id} and its parent ${parent.id} belong to different clusters`, 'take a new FULL backup');
    }
    chain.push(parent);
    seen.add(parent.id);
    current = parent;
  }
  return chain;
}
