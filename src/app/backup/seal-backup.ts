/**
 * Phase 7 of a backup (take-backup.ts): its sizes and metrics, the manifest written durably,
 * then the record DONE. The manifest is what says which stored files are complete, so the
 * journal and a resumed backup have served once it is down: failing to remove them leaves
 * clutter, not a failed backup.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { describeReuse } from '../../core/resume-rules.js';
import { formatLsn } from '../../core/lsn.js';
import { errorMessage } from '../../errors.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import type { BackupJournalWriter } from '../../repository/backup-journal.js';
import { backupJournalKey } from '../../repository/layout.js';
import { writeManifest } from '../../repository/manifest.js';
import { figuresToMetrics, type Meter } from '../progress.js';
import { saveBackup, type RepoContext } from '../repo-context.js';
import type { PageCheckCounters } from './read-data-file.js';
import { storedDataKeys } from '../stored-data-keys.js';
import { finishResume, type FileReuse, type ResumeSource } from './resume-plan.js';

export interface SealInput {
  /** Every file of the backup: data directory, backup_label, WAL. */
  entries: FileEntry[];
  /** What the walk of the data directory found (its size is the backup's pgdata size). */
  sources: readonly SourceEntry[];
  counters: PageCheckCounters;
  meter: Meter;
  journal: BackupJournalWriter;
  /** The server session ending: awaited before DONE, so that DONE means the slot is gone. */
  closing: Promise<void>;
  /** Entries whose stored files are already being made durable (the copy's, take-backup.ts), and that work. */
  syncing?: { entries: ReadonlySet<FileEntry>; done: Promise<void> } | undefined;
  resume?: { source: ResumeSource; reuse: FileReuse } | undefined;
}

export async function sealBackup(ctx: RepoContext, record: BackupRecord, s: SealInput): Promise<void> {
  const entries = s.entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const endTime = new Date();
  const sum = (pred: (e: FileEntry) => boolean, f: (e: FileEntry) => number) => entries.filter(pred).reduce((n, e) => n + f(e), 0);
  // Read: every page of a relation file read (counted as read), plus every other file read
  // whole (stored, or hashed against the parent's). Written and stored: the stored bytes.
  const storedBytes = sum(() => true, (e) => e.storedSize);
  const reuse = s.resume?.reuse;
  s.meter.count({
    read: s.counters.pagesRead * record.blockSize + sum((e) => e.kind !== 'data' && (e.storage === 'full' || e.storage === 'parent'), (e) => e.size),
    written: storedBytes - (reuse?.storedBytesReused ?? 0),
    stored: storedBytes,
  });
  const figures = s.meter.figures();
  Object.assign(record, {
    status: 'DONE',
    endTime,
    dataBytes: sum((e) => e.kind !== 'wal', (e) => e.size),
    pgdataBytes: s.sources.reduce((n, src) => n + src.size, 0),
    walBytes: sum((e) => e.kind === 'wal', (e) => e.size),
    storedBytes,
    ownerPid: null,
    metrics: {
      files: entries.length,
      durationMs: endTime.getTime() - record.startTime.getTime(),
      pagesRead: s.counters.pagesRead,
      pagesReread: s.counters.pagesReread,
      pagesTornAccepted: s.counters.pagesTornAccepted,
      peakRssBytes: figures.peakRssBytes,
      ...figuresToMetrics(figures),
      ...(reuse ? { filesReused: reuse.filesReused, bytesReused: reuse.bytesReused } : {}),
    },
  } satisfies Partial<BackupRecord>);
  // The copy did not wait for its stored files to reach the disk (take-backup.ts): the manifest
  // names only files that survive a power loss, content and name. It is written meanwhile, and
  // put in place once they are durable.
  const { syncing } = s;
  const rest = syncing ? entries.filter((e) => !syncing.entries.has(e)) : entries;
  const durable = Promise.all([syncing?.done, ctx.store.syncObjects(storedDataKeys(record.instance, record.id, rest))]);
  await writeManifest(ctx.store, record, entries, durable);
  await s.closing;
  await saveBackup(ctx, record);
  ctx.reporter.info(`backup ${record.id} completed: ${entries.length} files, stop LSN ${formatLsn(record.stopLsn ?? 0n)}`);

  await s.journal.close().catch(() => undefined);
  await ctx.store.remove(backupJournalKey(record.instance, record.id)).catch((e: unknown) => ctx.reporter.warn(`could not remove the journal of backup ${record.id}: ${errorMessage(e)}`));
  if (s.resume) await retireResumed(ctx, record, s.resume);
}

/** The interrupted backup this one resumed: its reused files are now this one's, the rest goes. */
async function retireResumed(ctx: RepoContext, record: BackupRecord, { source, reuse }: { source: ResumeSource; reuse: FileReuse }): Promise<void> {
  ctx.reporter.info(describeReuse(reuse.filesReused, reuse.bytesReused, source.backup.id, source.journal.attempt.startLsn));
  try {
    const removed = await finishResume(ctx, source);
    if (removed.length > 0) ctx.reporter.info(`removed interrupted backup ${removed.join(', ')}, resumed by backup ${record.id}`);
  } catch (e) {
    ctx.reporter.warn(`could not remove interrupted backup ${source.backup.id}: ${errorMessage(e)}; pgkeep delete --instance ${record.instance} -i ${source.backup.id} removes it`);
  }
}
