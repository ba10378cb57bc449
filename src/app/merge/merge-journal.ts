/**
 * merge.json: written inside the target backup before a merge changes anything, removed when it
 * has finished. Its presence says a merge is under way; `newGeneration` compared with the
 * generation in backup.json says whether it committed (then only clean-up is left) or not (then
 * it is rebuilt from the untouched chain).
 */
import { errorMessage, PgkeepError } from '../../errors.js';
import { backupKey } from '../../repository/layout.js';
import type { ByteStore } from '../../storage/byte-store.js';
import type { BackupStatus } from '../../core/backup-types.js';

export interface MergeJournal {
  formatVersion: 1;
  target: string;
  /** The chain folded into the target, newest first, FULL last. */
  ancestors: string[];
  newGeneration: number;
  /** The target's status before the merge: the merged backup gets it back. */
  previousStatus: BackupStatus;
}

export function mergeJournalKey(instance: string, id: string): string {
  return `${backupKey(instance, id)}/merge.json`;
}

export async function writeMergeJournal(store: ByteStore, instance: string, j: MergeJournal): Promise<void> {
  await store.writeAtomic(mergeJournalKey(instance, j.target), `${JSON.stringify(j, null, 2)}\n`);
}

export async function readMergeJournal(store: ByteStore, instance: string, id: string): Promise<MergeJournal | undefined> {
  const key = mergeJournalKey(instance, id);
  if (!(await store.stat(key))) return undefined;
  try {
    const j = JSON.parse((await store.read(key)).toString('utf8')) as MergeJournal;
    if (j.formatVersion !== 1 || j.target !== id || !Array.isArray(j.ancestors) || !Number.isInteger(j.newGeneration)) throw new Error('unexpected content');
    return j;
  } catch (e) {
    throw new PgkeepError('MANIFEST_CORRUPT', `merge journal ${key} is damaged: ${errorMessage(e)}`, 'inspect the backup directory; the chain it names is untouched unless backup.json shows the new generation');
  }
}

export async function removeMergeJournal(store: ByteStore, instance: string, id: string): Promise<void> {
  await store.remove(mergeJournalKey(instance, id));
}
