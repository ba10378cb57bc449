/**
 * Phase 6 of a backup (take-backup.ts): the WAL from the backup's start to its stop LSN, without
 * which its files are not consistent, and the recovery point found in it (the time and xid a
 * restore of the backup reaches). With --stream it is copied out of the server's pg_wal, which
 * the session's slot holds from the backup's start; otherwise the archive must come to hold it.
 */
import { join } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { walFileNamesBetween } from '../../core/lsn.js';
import { PgkeepError } from '../../errors.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import type { OperationProgress } from '../progress.js';
import type { RepoContext } from '../repo-context.js';
import { awaitArchivedSegments } from './await-archived-segments.js';
import type { CopyTarget } from './copy-entry.js';
import { copySources } from './copy-sources.js';
import type { PageCheckCounters } from './read-data-file.js';
import { recordRecoveryPoint } from './recovery-point.js';

export interface BackupWal {
  pgdata: string;
  threads: number;
  target: CopyTarget;
  counters: PageCheckCounters;
  progress: OperationProgress;
}

/** The names of the backup's WAL segments, from its start to its stop LSN, on its timeline. */
export function backupWalNames(record: BackupRecord): string[] {
  if (record.stopLsn === null) throw new PgkeepError('INTERNAL', `backup ${record.id} has no stop LSN yet`);
  return walFileNamesBetween(record.timeline, record.startLsn, record.stopLsn - 1n, record.walSegSize);
}

/** --stream: copies the backup's WAL out of pg_wal, and sets the record's recovery point from it. */
export async function copyBackupWal(ctx: RepoContext, record: BackupRecord, w: BackupWal): Promise<FileEntry[]> {
  const names = backupWalNames(record);
  const sources: SourceEntry[] = names.map((n) => ({ path: `pg_wal/${n}`, absPath: join(w.pgdata, 'pg_wal', n), kind: 'file', size: record.walSegSize, mode: 0o600, mtimeMs: Date.now() }));
  w.progress.start(sources.length, sources.length * record.walSegSize, 'wal');
  const copying = copySources(sources, w.target, w.threads, undefined, w.counters, { progress: w.progress }).then((copied) => copied.map((e) => ({ ...e, kind: 'wal' as const })));
  // The session's slot still holds pg_wal from the backup's start: the recovery point is read
  // there, on the main thread, while the workers copy the WAL.
  const recovering = recordRecoveryPoint(ctx, record, { entries: copying, pgdata: w.pgdata, rangeInPgWal: true });
  const entries = await copying.catch(async (e: unknown) => {
    await recovering; // it catches its own failures: the copy's is the one to report
    throw e;
  });
  w.progress.finish();
  if (entries.length !== names.length) {
    throw new PgkeepError('IO_ERROR', `WAL needed by the backup vanished from ${w.pgdata}/pg_wal before it could be copied`, 'check that nothing removes WAL files by hand; take the backup again');
  }
  await recovering;
  return entries;
}

/**
 * Without --stream: waits until the archive holds the backup's WAL, and sets the record's recovery
 * point from it. A primary's stop switched WAL, so its last segment is on its way; a standby
 * cannot switch: its last segment is archived (by the primary, or by the standby itself with
 * archive_mode = always) only once the primary has finished it.
 */
export async function awaitBackupWal(ctx: RepoContext, record: BackupRecord, w: { pgdata: string; entries: readonly FileEntry[]; timeoutSeconds: number; fromStandby: boolean }): Promise<void> {
  const names = backupWalNames(record);
  const standbyNote = w.fromStandby ? `; from a standby, the last one (${names[names.length - 1]}) once the primary finishes it` : '';
  ctx.reporter.info(`waiting for the backup's WAL to reach the archive (up to ${w.timeoutSeconds} s)${standbyNote}`);
  await awaitArchivedSegments({
    store: ctx.store,
    instance: record.instance,
    names,
    timeoutSeconds: w.timeoutSeconds,
    purpose: `needed by backup ${record.id}`,
    gapHint: 'the archive has a gap: check archive_command, or take the backup with --stream',
    ...(w.fromStandby ? { timeoutHint: 'run SELECT pg_switch_wal() on the primary (or set its archive_timeout), check that its archive_command archives into this instance, or take the backup with --stream' } : {}),
  });
  await recordRecoveryPoint(ctx, record, { entries: w.entries, pgdata: w.pgdata });
}
