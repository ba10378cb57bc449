/**
 * The restore use case:
 *
 *   1. select    the backup (-i, or the newest OK one that ends before the recovery target),
 *                refuse one that is not restorable; check that the archive holds the WAL from
 *                it to the target; resolve its chain down to the FULL backup and plan each file
 *   2. check     DEST, every tablespace target and --waldir are empty (nothing is touched before this)
 *   3. layout    directories (excluded ones recreated empty), tablespace links (remapped by -T),
 *                pg_wal as a link to --waldir
 *   4. files     stream every file into place in parallel (reconstructed block by block when the
 *                chain holds page deltas: each block from the newest backup that has it), fsync each
 *   5. recovery  backup_label and tablespace_map come from the backup; recovery settings if asked
 *   6. control   global/pg_control last: a half-restored directory cannot be started by accident
 *   7. sync      fsync the directories
 *
 * Run as root, every path is given the owner it had in the source (or --owner).
 */
import { chmod, lchown, mkdir, open, readdir, symlink, appendFile, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { recoveryConfigLines, recoverySignalFile, type RecoveryRequest } from '../../core/recovery-settings.js';
import { assertMappingsUsed, mapLocation, remapTablespaceMap, type TablespaceMapping } from '../../core/tablespace-mapping.js';
import { errnoCode, fromIoError, isPgkeepError, PgkeepError } from '../../errors.js';
import { walDirectoriesToCreate } from '../../postgres/pgdata-rules.js';
import { majorOf } from '../../postgres/server-versions.js';
import { assertSafeRelativePath } from '../../repository/layout.js';
import { ChainPlanner, type FilePlan } from '../../core/file-plan.js';
import { readManifest } from '../../repository/manifest.js';
import { chainOf, loadChain, type LoadedChain } from '../chain/load-chain.js';
import { forEachParallel } from '../../core/parallel.js';
import { silentProgress, type OperationProgress } from '../progress.js';
import { checkArchiveForTarget } from './check-archive-for-target.js';
import { selectBackupForTarget } from './select-backup-for-target.js';
import { checkArchivedWal } from '../validate/validate-backup.js';
import { openRestoreWriter, restorablePartCount, syncRestoredFile, writeRestoredFile } from './write-restored-file.js';
import { withInstanceLock } from '../instance-locking.js';
import type { RepoContext } from '../repo-context.js';

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

/** What a --force restore left out, and why. */
export interface MissingFile {
  path: string;
  problem: string;
}

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
  const missing: MissingFile[] = [];
  const backup = req.force && req.backupId ? salvageTarget(ctx, req.instance, req.backupId) : await selectBackupForTarget(ctx, req.instance, req.backupId, req.recovery);
  // Before anything is written: the archive must hold the WAL from the backup to the target.
  await checkArchiveForTarget(ctx, backup, req.recovery).catch((e: unknown) => {
    if (!req.force) throw e;
    missing.push({ path: 'WAL archive', problem: messageOf(e) });
  });
  // --force: also read back the archived WAL the backup needs to become consistent.
  if (req.force && !backup.stream) for (const p of await checkArchivedWal(ctx, backup)) missing.push(p);
  const chain = req.force ? await loadSalvageChain(ctx, backup, missing) : await loadChain(ctx, backup);
  const files = chain.targetFiles;
  for (const f of files) assertSafeRelativePath(f.path);
  const plans = new Map<string, FilePlan>();
  for (const f of files) {
    try {
      plans.set(f.path, chain.plan(f));
    } catch (e) {
      if (!req.force) throw e;
      missing.push({ path: f.path, problem: messageOf(e) });
    }
  }
  /** --force: a file that cannot be written whole and right is removed and listed instead. */
  const salvage = async (path: string, write: () => Promise<number>): Promise<number | undefined> => {
    if (!req.force) return write();
    try {
      return await write();
    } catch (e) {
      await unlink(join(req.dest, path)).catch(() => undefined);
      // A full or unwritable target is no loss in the repository: stop, as without --force.
      if (isPgkeepError(e) && (e.code === 'DISK_FULL' || e.code === 'REPO_NOT_WRITABLE' || e.code === 'INTERRUPTED')) throw e;
      // A file written in parts may fail in several of them: listed once.
      if (!missing.some((m) => m.path === path)) missing.push({ path, problem: messageOf(e) });
      return undefined;
    }
  };

  // 2. check
  const links = files.filter((f) => f.kind === 'symlink' && f.path.startsWith('pg_tblspc/'));
  assertMappingsUsed(req.tablespaceMapping, links.map((l) => l.linkTarget ?? ''));
  await assertEmptyOrMissing(req.dest, 'restore target');
  for (const l of links) await assertEmptyOrMissing(mapLocation(req.tablespaceMapping, l.linkTarget!), `tablespace target for ${l.path}`);
  if (req.walDir !== undefined) {
    assertWalDirOutside(req.walDir, req.dest);
    await assertEmptyOrMissing(req.walDir, 'WAL directory');
  }

  const asRoot = process.getuid?.() === 0;
  const ownerOf = (e: FileEntry) => req.owner ?? (e.uid !== undefined && e.gid !== undefined ? { uid: e.uid, gid: e.gid } : undefined);
  const rootOwner = req.owner ?? ownerOf(files.find((f) => f.kind === 'dir') ?? files[0]!);
  const setOwner = async (path: string, e: FileEntry | undefined) => {
    const o = e ? ownerOf(e) : rootOwner;
    if (asRoot && o) await lchown(path, o.uid, o.gid).catch((err: unknown) => { throw fromIoError(err, 'chown', path); });
  };

  // 3. layout
  await mkdir(req.dest, { recursive: true, mode: 0o700 }).catch((e: unknown) => { throw fromIoError(e, 'create', req.dest); });
  await chmod(req.dest, 0o700);
  await setOwner(req.dest, undefined);
  if (req.walDir !== undefined) await linkWalDir(req.walDir, join(req.dest, 'pg_wal'), files.find((f) => f.path === 'pg_wal'), setOwner);
  for (const e of files) {
    const path = join(req.dest, e.path);
    if (e.kind === 'dir' && e.path === 'pg_wal' && req.walDir !== undefined) {
      continue; // the link made above
    } else if (e.kind === 'dir') {
      await mkdir(path, { recursive: true, mode: e.mode }).catch((err: unknown) => { throw fromIoError(err, 'create', path); });
      await chmod(path, e.mode);
      await setOwner(path, e);
    } else if (e.kind === 'symlink') {
      const target = mapLocation(req.tablespaceMapping, e.linkTarget!);
      if (e.path.startsWith('pg_tblspc/')) {
        await mkdir(target, { recursive: true, mode: 0o700 }).catch((err: unknown) => { throw fromIoError(err, 'create', target); });
        await chmod(target, e.mode & 0o777 || 0o700);
        await setOwner(target, e);
      }
      await symlink(target, path).catch((err: unknown) => { throw fromIoError(err, 'link', path); });
      await setOwner(path, e);
    }
  }
  await ensureWalDirectories(req.dest, backup, setOwner);

  // 4. files
  const control = files.find((f) => f.path === 'global/pg_control');
  if (!control) throw new PgkeepError('BACKUP_CORRUPT', `backup ${backup.id} has no global/pg_control in its manifest`, 'validate the backup; restore another one');
  const regular = files.filter((f) => (f.kind === 'data' || f.kind === 'file' || f.kind === 'wal') && f !== control);
  regular.sort((a, b) => b.size - a.size);
  let bytesWritten = 0;
  const progress = req.progress ?? silentProgress;
  progress.start(regular.length + 1, regular.reduce((n, e) => n + e.size, control.size));
  const writer = openRestoreWriter(ctx.store, backup, req.threads, regular);
  const tasks = restoreTasks(regular, plans, backup.instance);
  const partsLeft = new Map<string, number>();
  await forEachParallel(tasks, req.threads, async ({ e, part, parts }, _i, slot) => {
    let transform: ((b: Buffer) => Buffer) | undefined;
    if (e.path === 'tablespace_map' && req.tablespaceMapping.size > 0) transform = (b) => Buffer.from(remapTablespaceMap(b.toString('utf8'), req.tablespaceMapping));
    const plan = plans.get(e.path);
    if (!plan) return; // --force: listed as missing
    if (part === undefined) {
      const written = await salvage(e.path, () => writer.write(plan, req.dest, slot, transform));
      progress.advance(1, written ?? 0);
      if (written === undefined) return;
      bytesWritten += written;
      await setOwner(join(req.dest, e.path), e);
      return;
    }
    // One part of a file stored in parts: the file counts as written when its last part is.
    const written = missing.some((m) => m.path === e.path) ? undefined : await salvage(e.path, () => writer.writePart(plan, req.dest, slot, part));
    const left = (partsLeft.get(e.path) ?? parts) - 1;
    partsLeft.set(e.path, left);
    progress.advance(left === 0 ? 1 : 0, written ?? 0);
    if (written !== undefined) bytesWritten += written;
    if (left === 0 && !missing.some((m) => m.path === e.path)) {
      await syncRestoredFile(join(req.dest, e.path));
      await setOwner(join(req.dest, e.path), e);
    }
  });
  await writer.close();
  // --force: a part written after another part of its file failed may have created it again.
  for (const m of missing) if (tasks.some((t) => t.part !== undefined && t.e.path === m.path)) await unlink(join(req.dest, m.path)).catch(() => undefined);

  // 5. recovery
  const recoveryLines = recoveryConfigLines(req.recovery, !backup.stream);
  const lines = req.archiveMode === 'off' ? [...(recoveryLines ?? []), '# archiving turned off by pgkeep restore --archive-mode=off', "archive_mode = 'off'"] : recoveryLines;
  if (lines) {
    const auto = join(req.dest, 'postgresql.auto.conf');
    await appendFile(auto, `\n${lines.join('\n')}\n`, { mode: 0o600 });
    await setOwner(auto, undefined);
    if (recoveryLines) {
      const signal = join(req.dest, recoverySignalFile(req.recovery));
      await writeFile(signal, '', { mode: 0o600 });
      await setOwner(signal, undefined);
    }
  }

  // 6. control
  const controlPlan = plans.get(control.path);
  const controlBytes = controlPlan ? await salvage(control.path, () => writeRestoredFile(ctx.store, backup.instance, backup.blockSize, controlPlan, req.dest)) : undefined;
  bytesWritten += controlBytes ?? 0;
  progress.advance(1, controlBytes ?? 0);
  progress.finish();
  if (controlBytes !== undefined) await setOwner(join(req.dest, control.path), control);

  // 7. sync
  await syncDirectories(req.dest, files);
  const bytesRead = [...regular, control].reduce((n, e) => n + (plans.get(e.path)?.sources ?? []).reduce((m, src) => m + src.entry.storedSize, 0), 0);
  const left = new Set(missing.map((m) => m.path));
  const filesWritten = [...regular, control].filter((e) => !left.has(e.path)).length;
  return { backup, chain: chain.members.map((b) => b.id), filesWritten, bytesWritten, bytesRead, missing };
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

/** --force -i: any backup whose files were completely written, CORRUPT and ORPHAN included. */
function salvageTarget(ctx: RepoContext, instance: string, id: string): BackupRecord {
  const b = ctx.catalog.requireBackup(instance, id);
  if (!['OK', 'DONE', 'CORRUPT', 'ORPHAN', 'MERGING'].includes(b.status)) {
    throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${b.id} is ${b.status}: it never completed, even --force has nothing to restore`, 'choose another backup (see `pgkeep show`)');
  }
  return b;
}

/**
 * --force: the chain as far as it goes, whatever the members' status. A member whose manifest
 * cannot be read, or a parent that is gone, is listed as missing; the files that needed it are
 * then listed one by one by the chain's plans. Only the target's own manifest is indispensable.
 */
async function loadSalvageChain(ctx: RepoContext, target: BackupRecord, missing: MissingFile[]): Promise<LoadedChain> {
  const planner = new ChainPlanner();
  let targetFiles: FileEntry[] = [];
  for (let b: BackupRecord | undefined = target; b !== undefined; ) {
    let entries: FileEntry[] = [];
    try {
      entries = (await readManifest(ctx.store, b.instance, b.id, b.generation)).files;
    } catch (e) {
      if (b === target) throw e;
      missing.push({ path: `manifest of backup ${b.id}`, problem: messageOf(e) });
    }
    if (b === target) targetFiles = entries;
    planner.add(b, entries);
    if (b.mode === 'FULL' || b.parentId === null) break;
    const parentId: string = b.parentId;
    b = ctx.catalog.getBackup(b.instance, parentId);
    if (!b) missing.push({ path: `backup ${parentId}`, problem: 'the parent is not in the catalog' });
    else if (planner.members.some((m) => m.id === parentId)) break;
  }
  return chainOf(planner, targetFiles);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function assertEmptyOrMissing(dir: string, what: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    if (errnoCode(e) === 'ENOTDIR') throw new PgkeepError('RESTORE_TARGET_NOT_EMPTY', `${what} ${dir} exists and is not a directory`, 'choose an empty or new directory');
    throw fromIoError(e, 'read', dir);
  }
  if (names.length > 0) {
    throw new PgkeepError('RESTORE_TARGET_NOT_EMPTY', `${what} ${dir} is not empty`, 'restore into an empty or new directory (remove the old cluster first if you mean to replace it)');
  }
}

/** A WAL directory inside the data directory would be restored into twice, or link to itself. */
function assertWalDirOutside(walDir: string, dest: string): void {
  if (!isAbsolute(walDir)) throw new PgkeepError('INVALID_ARGUMENT', `--waldir ${walDir} is not an absolute path`, 'give the WAL directory as an absolute path, as initdb -X takes it');
  const rel = relative(dest, walDir);
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new PgkeepError('INVALID_ARGUMENT', `--waldir ${walDir} lies inside the restore target ${dest}`, 'choose a WAL directory outside the data directory (on the volume meant for WAL)');
  }
}

/** --waldir: the directory made (with pg_wal's mode and owner in the backup) and pg_wal linked to it. */
async function linkWalDir(walDir: string, link: string, pgWal: FileEntry | undefined, setOwner: (p: string, e: FileEntry | undefined) => Promise<void>): Promise<void> {
  await mkdir(walDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => { throw fromIoError(err, 'create', walDir); });
  await chmod(walDir, pgWal ? pgWal.mode & 0o777 : 0o700);
  await setOwner(walDir, pgWal);
  await symlink(walDir, link).catch((err: unknown) => { throw fromIoError(err, 'link', link); });
  await setOwner(link, pgWal);
}

/** pg_wal's contents are not in a backup, but recovery needs its subdirectories. */
async function ensureWalDirectories(dest: string, backup: BackupRecord, setOwner: (p: string, e: FileEntry | undefined) => Promise<void>): Promise<void> {
  for (const d of walDirectoriesToCreate(majorOf(backup.serverVersionNum))) {
    const p = join(dest, d);
    await mkdir(p, { recursive: true, mode: 0o700 });
    await setOwner(p, undefined);
  }
}

async function syncDirectories(dest: string, files: FileEntry[]): Promise<void> {
  const dirs = new Set<string>([dest]);
  for (const f of files) if (f.kind === 'dir') dirs.add(join(dest, f.path));
  for (const d of dirs) {
    const fh = await open(d, 'r').catch(() => undefined);
    if (!fh) continue;
    await fh.sync().catch(() => undefined);
    await fh.close();
  }
}
