/**
 * The restore use case; the phases that are more than a call or two have their own files:
 *
 *   1. select    the backup (-i, or the newest OK one that ends before the recovery target),
 *                refuse one that is not restorable; check that the archive holds the WAL from
 *                it to the target; resolve its chain down to the FULL backup and plan each file
 *   2. check     DEST, every tablespace target and --waldir are empty (nothing is touched
 *                before this) (restore-layout.ts)
 *   3. layout    directories (excluded ones recreated empty), tablespace links (remapped by -T),
 *                pg_wal as a link to --waldir (restore-layout.ts)
 *   4. files     stream every file into place in parallel (reconstructed block by block when the
 *                chain holds page deltas: each block from the newest backup that has it)
 *   5. recovery  backup_label and tablespace_map come from the backup; recovery settings if asked
 *                (recovery-files.ts); then wait until every file written is fsynced (each was
 *                handed to the fsync queue as soon as it was written, in phase 4)
 *   6. control   global/pg_control last, fsynced: a half-restored directory cannot be started by
 *                accident, nor be left by a power loss with pg_control and without the rest
 *   7. sync      fsync the directories (restore-layout.ts)
 *
 * Run as root, every path is given the owner it had in the source (or --owner). With --force, a
 * failure that costs a file lists it instead of stopping the restore (salvage.ts).
 */
import { existsSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import type { FilePlan } from '../../core/file-plan.js';
import { forEachParallel } from '../../core/parallel.js';
import type { RecoveryRequest } from '../../core/recovery-settings.js';
import { remapTablespaceMap, type TablespaceMapping } from '../../core/tablespace-mapping.js';
import { isPgkeepError, PgkeepError } from '../../errors.js';
import { assertSafeRelativePath } from '../../repository/layout.js';
import { loadChain, type LoadedChain } from '../chain/load-chain.js';
import { silentProgress, type OperationProgress } from '../progress.js';
import { checkArchivedWal } from '../validate/validate-backup.js';
import { checkArchiveForTarget } from './check-archive-for-target.js';
import { writeRecoveryFiles } from './recovery-files.js';
import { checkRestoreTargets, layOutRestore, ownerSetter, syncRestoredDirectories } from './restore-layout.js';
import { loadSalvageChain, Salvage, salvageTarget, type MissingFile } from './salvage.js';
import { selectBackupForTarget } from './select-backup-for-target.js';
import { openRestoreWriter, restorablePartCount, writeRestoredFile } from './write-restored-file.js';
import { FileSyncQueue } from '../../storage/posix-store.js';
import { withInstanceLock } from '../instance-locking.js';
import type { RepoContext } from '../repo-context.js';
import { debugPhase } from '../../debug.js';

export interface RestoreRequest {
  instance: string;
  backupId?: string | undefined;
  dest: string;
  threads: number;
  tablespaceMapping: TablespaceMapping;
  /** --waldir: pg_wal is made a link to this directory (absolute; empty or new), as initdb -X makes it. */
  walDir?: string | undefined;
  recovery: RecoveryRequest;
  owner?: { uid: number; gid: number } | undefined;
  /**
   * 'off' turns archiving off in the restored cluster: a copy started beside the original must
   * not push its own timeline into the original's archive. 'preserve' keeps the source's setting.
   */
  archiveMode?: 'off' | 'preserve' | undefined;
  /** Told each file as it is written (--progress). */
  progress?: OperationProgress | undefined;
  /** --wait: seconds to wait for the instance's shared lock (Infinity: no limit); undefined fails at once. */
  waitSeconds?: number | undefined;
  /**
   * --force: salvage. A CORRUPT or ORPHAN backup may be named with -i, a broken chain or archive
   * does not stop the restore, and a file that cannot be rebuilt to its checksum is left out
   * (never written wrong) and listed in `missing`.
   */
  force?: boolean | undefined;
}

export type { MissingFile } from './salvage.js';

export interface RestoreResult {
  backup: BackupRecord;
  /** The backups the restore read from, newest first (the target down to its FULL backup). */
  chain: string[];
  filesWritten: number;
  bytesWritten: number;
  /** Stored bytes read from the repository (every source of every file written). */
  bytesRead: number;
  /** --force only: what could not be restored; empty means the restore is complete. */
  missing: MissingFile[];
}


/** Under the instance's shared lock, taken before the backup is chosen: no merge or delete can change the chain while it is read. */
export async function restoreBackup(ctx: RepoContext, req: RestoreRequest): Promise<RestoreResult> {
  ctx.catalog.requireInstance(req.instance);
  return withInstanceLock(ctx, req.instance, 'restore', req.waitSeconds, () => restoreLocked(ctx, req));
}

async function restoreLocked(ctx: RepoContext, req: RestoreRequest): Promise<RestoreResult> {
  // 1. select
  const salvage = new Salvage(req.force ?? false, req.dest);
  const backup = salvage.force && req.backupId ? salvageTarget(ctx, req.instance, req.backupId) : await selectBackupForTarget(ctx, req.instance, req.backupId, req.recovery);
  // Before anything is written: the archive must hold the WAL from the backup to the target.
  await checkArchiveForTarget(ctx, backup, req.recovery).catch((e: unknown) => salvage.excuse('WAL archive', e));
  // --force: also read back the archived WAL the backup needs to become consistent.
  if (salvage.force && !backup.stream) salvage.missing.push(...(await checkArchivedWal(ctx, backup)));
  const chain = salvage.force ? await loadSalvageChain(ctx, backup, salvage.missing) : await loadChain(ctx, backup);
  debugPhase(`backup chosen and its chain's manifests read (${chain.members.length} backup(s))`);
  const files = chain.targetFiles;
  for (const f of files) assertSafeRelativePath(f.path);
  const plans = new Map<string, FilePlan>();
  for (const f of files) {
    try {
      plans.set(f.path, chain.plan(f));
    } catch (e) {
      salvage.excuse(f.path, e);
    }
  }

  // 2. check
  await checkRestoreTargets(req, files);
  debugPhase('files planned, targets checked');
  const control = files.find((f) => f.path === 'global/pg_control');
  if (!control) throw new PgkeepError('BACKUP_CORRUPT', `backup ${backup.id} has no global/pg_control in its manifest`, 'validate the backup; restore another one');

  // Nothing is written before this point; from here, a failure leaves DEST part-written.
  try {
    return await writeRestore(ctx, req, { backup, chain, files, plans, control, salvage });
  } catch (e) {
    throw partWritten(e, req, files.some((f) => f.kind === 'symlink' && f.path.startsWith('pg_tblspc/')));
  }
}

/**
 * A restore that fails once it has begun writing leaves DEST (and the tablespace and WAL
 * directories it made) part-written. pg_control comes last, so that cannot be started by
 * accident; the hint says so, and that the targets must be emptied before the next attempt.
 */
function partWritten(e: unknown, req: RestoreRequest, tablespaces: boolean): unknown {
  // DEST is made first: without it nothing was written (its mkdir failed), nothing to remove.
  if (!isPgkeepError(e) || !existsSync(req.dest)) return e;
  const others = [...(tablespaces ? ['the tablespace directories'] : []), ...(req.walDir !== undefined ? [req.walDir] : [])];
  const remove = `remove ${[req.dest, ...others].join(', ').replace(/, ([^,]*)$/, ' and $1')} (left part-written, without global/pg_control: it cannot start)`;
  const hint = e.code === 'DISK_FULL'
    ? `free space on that file system (or restore elsewhere), ${remove}, and restore again`
    : `${e.hint ?? 'see the error above'}; then ${remove} before restoring again`;
  return new PgkeepError(e.code, e.message, hint, { cause: e });
}

interface RestoreWork {
  backup: BackupRecord;
  chain: LoadedChain;
  files: FileEntry[];
  plans: ReadonlyMap<string, FilePlan>;
  control: FileEntry;
  salvage: Salvage;
}

/** Phases 3 to 7: the planned restore written. */
async function writeRestore(ctx: RepoContext, req: RestoreRequest, { backup, chain, files, plans, control, salvage }: RestoreWork): Promise<RestoreResult> {
  // 3. layout
  const setOwner = ownerSetter(files, req.owner);
  await layOutRestore(req, files, backup, setOwner);
  debugPhase('directories and links laid out');

  // 4. files
  const regular = files.filter((f) => (f.kind === 'data' || f.kind === 'file' || f.kind === 'wal') && f !== control);
  regular.sort((a, b) => b.size - a.size);
  let bytesWritten = 0;
  const progress = req.progress ?? silentProgress;
  progress.start(regular.length + 1, regular.reduce((n, e) => n + e.size, control.size));
  const writer = openRestoreWriter(ctx.store, backup, req.threads, regular);
  const tasks = restoreTasks(regular, plans, backup.instance);
  const partsLeft = new Map<string, number>();
  // Each file is fsynced as soon as it is written, so that the disk writes back the first
  // (largest) files while the rest are decoded and written, instead of all of them after the last.
  const syncs = new FileSyncQueue();
  // A file whole in place: given its owner, then fsynced in the background.
  const finished = async (e: FileEntry) => {
    const path = join(req.dest, e.path);
    await setOwner(path, e);
    syncs.add(path);
  };
  await forEachParallel(tasks, req.threads, async ({ e, part, parts }, _i, slot) => {
    let transform: ((b: Buffer) => Buffer) | undefined;
    if (e.path === 'tablespace_map' && req.tablespaceMapping.size > 0) transform = (b) => Buffer.from(remapTablespaceMap(b.toString('utf8'), req.tablespaceMapping));
    const plan = plans.get(e.path);
    if (!plan) return; // --force: listed as missing
    if (part === undefined) {
      const written = await salvage.write(e.path, () => writer.write(plan, req.dest, slot, transform));
      progress.advance(1, written ?? 0);
      if (written === undefined) return;
      bytesWritten += written;
      await finished(e);
      return;
    }
    // One part of a file stored in parts: the file counts as written when its last part is.
    const written = salvage.isMissing(e.path) ? undefined : await salvage.write(e.path, () => writer.writePart(plan, req.dest, slot, part));
    const left = (partsLeft.get(e.path) ?? parts) - 1;
    partsLeft.set(e.path, left);
    progress.advance(left === 0 ? 1 : 0, written ?? 0);
    if (written !== undefined) bytesWritten += written;
    if (left === 0 && !salvage.isMissing(e.path)) await finished(e);
  });
  await writer.close();
  debugPhase('files written');
  // --force: a part written after another part of its file failed may have created it again.
  for (const m of salvage.missing) if (tasks.some((t) => t.part !== undefined && t.e.path === m.path)) await unlink(join(req.dest, m.path)).catch(() => undefined);

  // 5. recovery
  const recoveryFiles = await writeRecoveryFiles(req.dest, req.recovery, { fromArchive: !backup.stream, archiveMode: req.archiveMode, setOwner });
  // Every file is fsynced once written, in the background (the writers never wait for the
  // disk); here the last of those syncs, and the recovery files', are waited for.
  for (const f of recoveryFiles) syncs.add(f);
  await syncs.drain();
  debugPhase('recovery settings written, files synced');

  // 6. control
  const controlPlan = plans.get(control.path);
  const controlBytes = controlPlan ? await salvage.write(control.path, () => writeRestoredFile(ctx.store, backup.instance, backup.blockSize, controlPlan, req.dest, undefined, true)) : undefined;
  bytesWritten += controlBytes ?? 0;
  progress.advance(1, controlBytes ?? 0);
  progress.finish();
  if (controlBytes !== undefined) await setOwner(join(req.dest, control.path), control);
  debugPhase('pg_control written');

  // 7. sync
  await syncRestoredDirectories(req.dest, files);
  debugPhase('directories synced');
  const bytesRead = [...regular, control].reduce((n, e) => n + (plans.get(e.path)?.sources ?? []).reduce((m, src) => m + src.entry.storedSize, 0), 0);
  const left = new Set(salvage.missing.map((m) => m.path));
  const filesWritten = [...regular, control].filter((e) => !left.has(e.path)).length;
  return { backup, chain: chain.members.map((b) => b.id), filesWritten, bytesWritten, bytesRead, missing: salvage.missing };
}

interface RestoreTask {
  e: FileEntry;
  /** A part of a file stored in parts, written beside its other parts; undefined for a whole file. */
  part?: number;
  /** How many parts the file has (with `part`). */
  parts: number;
  size: number;
}

/** Files to write, largest first; a file stored in parts as one task per part, so that every writer shares a large file. */
function restoreTasks(regular: readonly FileEntry[], plans: ReadonlyMap<string, FilePlan>, instance: string): RestoreTask[] {
  const tasks: RestoreTask[] = [];
  for (const e of regular) {
    const plan = plans.get(e.path);
    const parts = plan ? restorablePartCount(instance, plan) : 0;
    if (parts === 0 || !plan) {
      tasks.push({ e, parts: 0, size: e.size });
      continue;
    }
    const partSize = plan.sources[0]!.entry.partSize!;
    for (let part = 0; part < parts; part++) tasks.push({ e, part, parts, size: Math.min(partSize, e.size - part * partSize) });
  }
  return tasks.sort((a, b) => b.size - a.size);
}
