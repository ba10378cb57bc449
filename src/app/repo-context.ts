/**
 * Opening a repository for a command: the versioned root, the byte store over it, and the
 * catalog beside it. Every command goes through here, which is also where backups left RUNNING
 * by a process that no longer exists are found and marked ERROR.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { BackupRecord } from '../core/backup-types.js';
import { openCatalog, type Catalog } from '../catalog/catalog.js';
import { writeBackupControl } from '../repository/backup-control.js';
import { openRepositoryRoot } from '../repository/format-file.js';
import { isProcessAlive } from '../repository/instance-lock.js';
import { backupJournalKey, backupKey, CATALOG_FILE } from '../repository/layout.js';
import type { ByteStore } from '../storage/byte-store.js';
import { PosixStore } from '../storage/posix-store.js';
import type { Reporter } from './reporter.js';

export interface RepoContext {
  root: string;
  store: ByteStore;
  catalog: Catalog;
  reporter: Reporter;
  close(): void;
}

export async function openRepo(root: string, reporter: Reporter, opts: { recreateCatalog?: boolean } = {}): Promise<RepoContext> {
  await openRepositoryRoot(root);
  const store = new PosixStore(root);
  // A missing catalog is an error (CATALOG_CORRUPT), except for `catalog rebuild`, which creates it.
  const catalog = openCatalog(join(root, CATALOG_FILE), { mustExist: opts.recreateCatalog !== true });
  const ctx: RepoContext = { root, store, catalog, reporter, close: () => catalog.close() };
  try {
    await markDeadRunningBackups(ctx);
  } catch (e) {
    ctx.close();
    throw e;
  }
  return ctx;
}

/** Writes a backup's record: the repository's backup.json first (the truth), then the catalog index. */
export async function saveBackup(ctx: RepoContext, record: BackupRecord): Promise<void> {
  await writeBackupControl(ctx.store, record);
  ctx.catalog.upsertBackup(record);
}

async function markDeadRunningBackups(ctx: RepoContext): Promise<void> {
  const here = hostname();
  for (const b of ctx.catalog.listBackups(undefined, { statuses: ['RUNNING'] })) {
    if (b.ownerHost !== here || b.ownerPid === null || isProcessAlive(b.ownerPid)) continue;
    // A backup with a journal kept its stored files: the next backup of its kind resumes it.
    const resumable = await ctx.store.exists(backupJournalKey(b.instance, b.id));
    ctx.reporter.warn(`backup ${b.id} of instance ${b.instance} was left RUNNING by process ${b.ownerPid}, which is gone: marking it ERROR${resumable ? ` (the next ${b.mode} backup resumes it; pgkeep delete -i ${b.id} frees its space)` : ''}`);
    await saveBackup(ctx, { ...b, status: 'ERROR', error: `interrupted: process ${b.ownerPid} ended before the backup finished`, ownerPid: null });
    // Files the killed writers never renamed into place: not journalled, so never reused.
    await ctx.store.cleanupTemporaries(backupKey(b.instance, b.id));
  }
}
