/**
 * The shape of a restored data directory (restore-backup.ts): what must be empty before anything
 * is written (phase 2), the directories, tablespace links and pg_wal made before the files
 * (phase 3), their owners when run as root, and their fsync at the end (phase 7).
 */
import { constants } from 'node:fs';
import { access, chmod, lchown, lstat, mkdir, open, readdir, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { assertMappingsUsed, mapLocation, type TablespaceMapping } from '../../core/tablespace-mapping.js';
import { errnoCode, fromIoError, PgkeepError } from '../../errors.js';
import { walDirectoriesToCreate } from '../../postgres/pgdata-rules.js';
import { majorOf } from '../../postgres/server-versions.js';

export interface RestoreTargets {
  dest: string;
  tablespaceMapping: TablespaceMapping;
  walDir?: string | undefined;
}

/** Gives a restored path its owner: as root, the one recorded in the manifest (or --owner); otherwise nothing. */
export type SetOwner = (path: string, entry: FileEntry | undefined) => Promise<void>;

export function ownerSetter(files: readonly FileEntry[], owner: { uid: number; gid: number } | undefined): SetOwner {
  const asRoot = process.getuid?.() === 0;
  const ownerOf = (e: FileEntry) => owner ?? (e.uid !== undefined && e.gid !== undefined ? { uid: e.uid, gid: e.gid } : undefined);
  const rootOwner = owner ?? ownerOf(files.find((f) => f.kind === 'dir') ?? files[0]!);
  return async (path, e) => {
    const o = e ? ownerOf(e) : rootOwner;
    if (asRoot && o) await lchown(path, o.uid, o.gid).catch((err: unknown) => { throw fromIoError(err, 'chown', path); });
  };
}

/** Phase 2: every -T mapping names a tablespace of the backup; DEST, each tablespace target and --waldir are empty or missing, and writable. */
export async function checkRestoreTargets(t: RestoreTargets, files: readonly FileEntry[]): Promise<void> {
  const links = tablespaceLinks(files);
  assertMappingsUsed(t.tablespaceMapping, links.map((l) => l.linkTarget ?? ''));
  await assertEmptyOrMissing(t.dest, 'restore target');
  for (const l of links) await assertEmptyOrMissing(mapLocation(t.tablespaceMapping, l.linkTarget!), `tablespace target for ${l.path}`);
  if (t.walDir !== undefined) {
    assertWalDirOutside(t.walDir, t.dest);
    await assertEmptyOrMissing(t.walDir, 'WAL directory');
  }
}

/** Phase 3: DEST, its directories (excluded ones empty), tablespace links (remapped by -T) and pg_wal (a link with --waldir). */
export async function layOutRestore(t: RestoreTargets, files: readonly FileEntry[], backup: BackupRecord, setOwner: SetOwner): Promise<void> {
  await mkdir(t.dest, { recursive: true, mode: 0o700 }).catch((e: unknown) => { throw fromIoError(e, 'create', t.dest); });
  await chmod(t.dest, 0o700);
  await setOwner(t.dest, undefined);
  if (t.walDir !== undefined) await linkWalDir(t.walDir, join(t.dest, 'pg_wal'), files.find((f) => f.path === 'pg_wal'), setOwner);
  for (const e of files) {
    const path = join(t.dest, e.path);
    if (e.kind === 'dir' && e.path === 'pg_wal' && t.walDir !== undefined) {
      continue; // the link made above
    } else if (e.kind === 'dir') {
      await mkdir(path, { recursive: true, mode: e.mode }).catch((err: unknown) => { throw fromIoError(err, 'create', path); });
      await chmod(path, e.mode);
      await setOwner(path, e);
    } else if (e.kind === 'symlink') {
      const target = mapLocation(t.tablespaceMapping, e.linkTarget!);
      if (e.path.startsWith('pg_tblspc/')) {
        await mkdir(target, { recursive: true, mode: 0o700 }).catch((err: unknown) => { throw fromIoError(err, 'create', target); });
        await chmod(target, e.mode & 0o777 || 0o700);
        await setOwner(target, e);
      }
      await symlink(target, path).catch((err: unknown) => { throw fromIoError(err, 'link', path); });
      await setOwner(path, e);
    }
  }
  await ensureWalDirectories(t.dest, backup, setOwner);
}

/** Phase 7: DEST and every directory restored, fsynced (what cannot be opened is skipped). */
export async function syncRestoredDirectories(dest: string, files: readonly FileEntry[]): Promise<void> {
  const dirs = new Set<string>([dest]);
  for (const f of files) if (f.kind === 'dir') dirs.add(join(dest, f.path));
  for (const d of dirs) {
    const fh = await open(d, 'r').catch(() => undefined);
    if (!fh) continue;
    await fh.sync().catch(() => undefined);
    await fh.close();
  }
}

function tablespaceLinks(files: readonly FileEntry[]): FileEntry[] {
  return files.filter((f) => f.kind === 'symlink' && f.path.startsWith('pg_tblspc/'));
}

/**
 * `dir` is an empty directory, or missing, and this user can make or fill it: checked before
 * anything is written, so that a target in someone else's directory is refused with nothing to
 * clean up, rather than failing at its first mkdir.
 */
async function assertEmptyOrMissing(dir: string, what: string): Promise<void> {
  let names: string[] | undefined;
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOTDIR') {
      const itself = await pathExists(dir);
      throw new PgkeepError('RESTORE_TARGET_NOT_EMPTY', itself ? `${what} ${dir} exists and is not a directory` : `${what} ${dir} lies under a file, not a directory`, 'choose an empty or new directory');
    }
    if (errnoCode(e) !== 'ENOENT') throw fromIoError(e, 'read', dir);
  }
  if (names !== undefined && names.length > 0) {
    throw new PgkeepError('RESTORE_TARGET_NOT_EMPTY', `${what} ${dir} is not empty`, 'restore into an empty or new directory (remove the old cluster first if you mean to replace it)');
  }
  // An empty directory is filled; a missing one is made, with its missing parents, in the
  // nearest directory that exists.
  const where = names !== undefined ? dir : await nearestExistingAncestor(dir);
  await access(where, constants.W_OK | constants.X_OK).catch((e: unknown) => { throw fromIoError(e, 'create', dir); });
}

/** The closest ancestor of the missing `path` that exists (at worst the root). */
async function nearestExistingAncestor(path: string): Promise<string> {
  let p = dirname(path);
  while (dirname(p) !== p && !(await pathExists(p))) p = dirname(p);
  return p;
}

/** `path` itself exists, whatever it is (a symbolic link is not followed). */
async function pathExists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
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
async function linkWalDir(walDir: string, link: string, pgWal: FileEntry | undefined, setOwner: SetOwner): Promise<void> {
  await mkdir(walDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => { throw fromIoError(err, 'create', walDir); });
  await chmod(walDir, pgWal ? pgWal.mode & 0o777 : 0o700);
  await setOwner(walDir, pgWal);
  await symlink(walDir, link).catch((err: unknown) => { throw fromIoError(err, 'link', link); });
  await setOwner(link, pgWal);
}

/** pg_wal's contents are not in a backup, but recovery needs its subdirectories. */
async function ensureWalDirectories(dest: string, backup: BackupRecord, setOwner: SetOwner): Promise<void> {
  for (const d of walDirectoriesToCreate(majorOf(backup.serverVersionNum))) {
    const p = join(dest, d);
    await mkdir(p, { recursive: true, mode: 0o700 });
    await setOwner(p, undefined);
  }
}
