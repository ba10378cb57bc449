/**
 * A backup that failed (take-backup.ts): marked ERROR, so that nothing takes it for a complete
 * one. What its journal names (stored files known complete) is kept for the next backup of its
 * kind to resume; everything else of its data is removed, and without a journal, all of it.
 */
import type { BackupRecord } from '../../core/backup-types.js';
import { errorMessage } from '../../errors.js';
import type { BackupJournalWriter } from '../../repository/backup-journal.js';
import { backupKey } from '../../repository/layout.js';
import { saveBackup, type RepoContext } from '../repo-context.js';
import { keepJournalledFiles } from './resume-plan.js';

/** Never throws: the backup's own failure is the one to report; a failure here is a warning. */
export async function abandonBackup(ctx: RepoContext, record: BackupRecord, cause: unknown, journal: BackupJournalWriter | undefined): Promise<void> {
  const message = errorMessage(cause);
  try {
    // Lines queued for files already committed reach the disk (a full disk may refuse: then
    // what is there counts).
    await journal?.close().catch(() => undefined);
    // ERROR first: if removing the data is interrupted, the backup is still known as failed.
    await saveBackup(ctx, { ...record, status: 'ERROR', error: message, ownerPid: null, endTime: new Date() });
    if (!journal) {
      await ctx.store.removeTree(`${backupKey(record.instance, record.id)}/data`);
      return;
    }
    const kept = await keepJournalledFiles(ctx, record);
    if (kept > 0) {
      ctx.reporter.warn(`backup ${record.id} failed; the ${kept} files it stored are kept: the next ${record.mode} backup resumes it (or run backup --resume), or free the space with pgkeep delete --instance ${record.instance} -i ${record.id}`);
    }
  } catch (e) {
    ctx.reporter.warn(`could not mark backup ${record.id} ERROR: ${errorMessage(e)}`);
  }
}
