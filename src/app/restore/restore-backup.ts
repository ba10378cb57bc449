/**
 * The restore use case:
 *
 *   1. select    the backup (-i, or the newest OK one that ends before the recovery target),
 *                refuse one that is not restorable; check that the archive holds the WAL from
 *                it to the target; resolve its chain down to the FULL backup and plan each file
 *   2. check     DEST and every tablespace target are empty (nothing is touched before this)
 *   3. layout    directories (excluded ones recreated empty), tablespace links (remapped by -T)
 *   4. files     stream every file into place in parallel (reconstructed block by block when the
 *                chain holds page deltas: each block from the newest backup that has it), fsync each
 *   5. recovery  backup_label and tablespace_map come from the backup; recovery settings if asked
 *   6. control   global/pg_control last: a half-restored directory cannot be started by accident
 *   7. sync      fsync the directories
 *
 * Run as root, every path is given the owner it had in the source (or --owner).
 */
import { chmod, lchown, mkdir, open, readdir, symlink, appendFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { recoveryConfigLines, type RecoveryRequest } from '../../core/recovery-settings.js';
import { assertMappingsUsed, mapLocation, remapTablespaceMap, type TablespaceMapping } from '../../core/tablespace-mapping.js';
import { errnoCode, fromIoError, PgkeepError } from '../../errors.js';
import { walDirectoriesToCreate } from '../../postgres/pgdata-rules.js';
import { majorOf } from '../../postgres/server-versions.js';
import { assertSafeRelativePath } from '../../repository/layout.js';
import { planFile, type FilePlan } from '../../core/file-plan.js';
import { fileContent } from '../chain/file-content.js';
import { loadChain } from '../chain/load-chain.js';
import { forEachParallel } from '../parallel.js';
import { checkArchiveForTarget } from './check-archive-for-target.js';
import { selectBackupForTarget } from './select-backup-for-target.js';
import type { RepoContext } from '../repo-context.js';

export interface RestoreRequest {
  instance: string;
  backupId?: string | undefined;
  dest: string;
  threads: number;
  tablespaceMapping: TablespaceMapping;
  recovery: RecoveryRequest;
  owner?: { uid: number; gid: number } | undefined;
  /**
   * 'off' turns archiving off in the restored cluster: a copy started beside the original must
   * not push its own timeline into the original's archive. 'preserve' keeps the source's setting.
   */
  archiveMode?: 'off' | 'preserve' | undefined;
}

export interface RestoreResult {
  backup: BackupRecord;
  /** The backups the restore read from, newest first (the target down to its FULL backup). */
  chain: string[];
  filesWritten: number;
  bytesWritten: number;
}


export async function restoreBackup(ctx: RepoContext, req: RestoreRequest): Promise<RestoreResult> {
  // 1. select
  ctx.catalog.requireInstance(req.instance);
  const backup = await selectBackupForTarget(ctx, req.instance, req.backupId, req.recovery);
  // Before anything is written: the archive must hold the WAL from the backup to the target.
  await checkArchiveForTarget(ctx, backup, req.recovery);
  const chain = await loadChain(ctx, backup);
  const files = chain.targetFiles;
  for (const f of files) assertSafeRelativePath(f.path);
  const plans = new Map<string, FilePlan>(files.map((f) => [f.path, planFile(f, chain.members)]));

  // 2. check
  const links = files.filter((f) => f.kind === 'symlink' && f.path.startsWith('pg_tblspc/'));
  assertMappingsUsed(req.tablespaceMapping, links.map((l) => l.linkTarget ?? ''));
  await assertEmptyOrMissing(req.dest, 'restore target');
  for (const l of links) await assertEmptyOrMissing(mapLocation(req.tablespaceMapping, l.linkTarget!), `tablespace target for ${l.path}`);

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
  for (const e of files) {
    const path = join(req.dest, e.path);
    if (e.kind === 'dir') {
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
  await forEachParallel(regular, req.threads, async (e) => {
    let transform: ((b: Buffer) => Buffer) | undefined;
    if (e.path === 'tablespace_map' && req.tablespaceMapping.size > 0) transform = (b) => Buffer.from(remapTablespaceMap(b.toString('utf8'), req.tablespaceMapping));
    bytesWritten += await writeEntry(ctx, backup, plans.get(e.path)!, req.dest, transform);
    await setOwner(join(req.dest, e.path), e);
  });

  // 5. recovery
  const recoveryLines = recoveryConfigLines(req.recovery, !backup.stream);
  const lines = req.archiveMode === 'off' ? [...(recoveryLines ?? []), '# archiving turned off by pgkeep restore --archive-mode=off', "archive_mode = 'off'"] : recoveryLines;
  if (lines) {
    const auto = join(req.dest, 'postgresql.auto.conf');
    await appendFile(auto, `\n${lines.join('\n')}\n`, { mode: 0o600 });
    await setOwner(auto, undefined);
    if (recoveryLines) {
      const signal = join(req.dest, 'recovery.signal');
      await writeFile(signal, '', { mode: 0o600 });
      await setOwner(signal, undefined);
    }
  }

  // 6. control
  bytesWritten += await writeEntry(ctx, backup, plans.get(control.path)!, req.dest);
  await setOwner(join(req.dest, control.path), control);

  // 7. sync
  await syncDirectories(req.dest, files);
  return { backup, chain: chain.members.map((m) => m.backup.id), filesWritten: regular.length + 1, bytesWritten };
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

/** pg_wal's contents are not in a backup, but recovery needs its subdirectories. */
async function ensureWalDirectories(dest: string, backup: BackupRecord, setOwner: (p: string, e: FileEntry | undefined) => Promise<void>): Promise<void> {
  for (const d of walDirectoriesToCreate(majorOf(backup.serverVersionNum))) {
    const p = join(dest, d);
    await mkdir(p, { recursive: true, mode: 0o700 });
    await setOwner(p, undefined);
  }
}

async function writeEntry(ctx: RepoContext, backup: BackupRecord, plan: FilePlan, dest: string, transform?: (b: Buffer) => Buffer): Promise<number> {
  const e = plan.entry;
  const path = join(dest, e.path);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let fh;
  try {
    fh = await open(path, 'wx', e.mode & 0o777);
  } catch (err) {
    throw fromIoError(err, 'create', path);
  }
  let written = 0;
  try {
    const content = fileContent(ctx.store, backup.instance, plan, backup.blockSize);
    if (transform) {
      // Only tablespace_map is transformed: a few lines, read whole.
      const parts: Buffer[] = [];
      for await (const chunk of content) parts.push(Buffer.from(chunk));
      const out = transform(Buffer.concat(parts));
      await fh.write(out);
      written = out.length;
    } else {
      for await (const chunk of content) {
        await fh.write(chunk, 0, chunk.length, written);
        written += chunk.length;
      }
    }
    await fh.chmod(e.mode & 0o7777);
    await fh.sync();
  } catch (err) {
    throw fromIoError(err, 'write', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
  return written;
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
