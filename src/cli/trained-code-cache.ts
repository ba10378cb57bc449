/**
 * The backup bundle's code cache as this user's own backups left it. The build's cache
 * (compile-cache.ts) holds what V8 compiled running the bundle's top level, and no more: every
 * function a backup then calls is compiled again, lazily, in every run, about 15 ms of a PTRACK
 * backup of a small change (docs/performance.md, "A code cache trained by the user's backups").
 * V8 can write a cache at any time with every function it has compiled by then, so after a
 * backup that succeeds pgkeep saves one in the user's cache directory, one per backup mode, and
 * later backups of that mode start from it. It is written once per bundle, Node.js and mode.
 *
 * A code cache is code, and V8 checks of the source only its length. So:
 * - a cache is named by the bundle's id (a hash of its text, which the build writes in its
 *   first line) and Node's version: no cache meets a bundle it was not made from;
 * - it is read only from a directory the effective user owns and no one else may write, and
 *   only when the file is that user's and no one else's to write (others could make it run
 *   their code); otherwise the build's cache is used, and nothing is saved.
 * Where: $PGKEEP_CODE_CACHE_DIR (`off`: none), else $XDG_CACHE_HOME/pgkeep, else ~/.cache/pgkeep
 * of the effective user's home in the password database (not $HOME, which `su` and setpriv
 * leave as another user's). A failure to read or save a trained cache only costs the compile.
 */
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { codeCachePath, readCache, runWithCodeCache } from './compile-cache.js';

/** How the bundle was compiled: from this user's trained cache, the build's, a rejected one, or none. */
export type BundleCacheUse = 'trained' | 'build' | 'rejected' | 'absent';

export interface BundleRun {
  exports: Record<string, unknown>;
  codeCache: BundleCacheUse;
  /** The trained cache's file (undefined when there is none to use or save). */
  trainedFile: string | undefined;
  /** After a successful run: saves V8's cache of everything compiled so far, unless the trained one was used. True when saved. */
  saveTrained(): boolean;
}

/** Trained caches kept in the directory (a few modes of a few builds); older ones are removed. */
const KEEP_FILES = 12;
/** The first line the build writes in the bundle (scripts/bundle-hot-commands.js). */
const BUNDLE_ID_LINE = /^\/\/ pgkeep-bundle-id: ([0-9a-f]{16,64})\n/;
const CACHE_FILE = /^backup-[0-9a-f]{16,64}-v[0-9.]+-[A-Za-z]{1,16}\.v8cache$/;

/** The directory of this user's trained caches, or undefined when turned off. */
export function trainedCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const set = env.PGKEEP_CODE_CACHE_DIR;
  if (set !== undefined) return set === '' || set === 'off' ? undefined : set;
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'pgkeep');
  try {
    return join(userInfo().homedir, '.cache', 'pgkeep');
  } catch {
    return undefined; // no entry for this uid in the password database
  }
}

/** The bundle's id from its first line, or undefined (a bundle built without one gets no trained cache). */
export function bundleId(source: string): string | undefined {
  return BUNDLE_ID_LINE.exec(source.slice(0, 100))?.[1];
}

/** The backup mode a command line names (-b, --backup-mode), which the trained cache is kept per; 'other' if none. */
export function backupModeLabel(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    const value = a === '-b' || a === '--backup-mode' ? args[i + 1] : /^(?:-b=?|--backup-mode=)(.+)$/.exec(a)?.[1];
    if (value !== undefined) return /^[A-Z]{1,16}$/.test(value) ? value : 'other';
  }
  return 'other';
}

/** Runs the bundle at `path` with this user's trained cache for `label` when there is one, else the build's. */
export function runBundle(path: string, label: string, dir: string | undefined = trainedCacheDir()): BundleRun {
  let trainedFile: string | undefined;
  let from: 'trained' | 'build' | undefined;
  const loaded = runWithCodeCache(path, (source) => {
    const id = bundleId(source);
    if (dir !== undefined && id !== undefined) {
      trainedFile = join(dir, `backup-${id}-${process.version}-${label}.v8cache`);
      const trained = readOwnFile(dir, trainedFile);
      if (trained) {
        from = 'trained';
        return trained;
      }
    }
    const built = readCache(codeCachePath(path));
    if (built) from = 'build';
    return built;
  });
  const codeCache: BundleCacheUse = loaded.codeCache === 'used' ? (from ?? 'build') : loaded.codeCache;
  return {
    exports: loaded.exports,
    codeCache,
    trainedFile,
    saveTrained: () => {
      if (codeCache === 'trained' || dir === undefined || trainedFile === undefined) return false;
      try {
        return saveOwnFile(dir, trainedFile, loaded.createCache());
      } catch {
        return false; // the backup succeeded: a cache not saved only costs the next one the compile
      }
    },
  };
}

/** Owned by the effective user, and writable by no one else. */
function isOwnAndPrivate(st: Stats): boolean {
  return st.uid === process.geteuid?.() && (st.mode & 0o022) === 0;
}

function isOwnPrivateDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && isOwnAndPrivate(st);
  } catch {
    return false;
  }
}

/** The file's bytes when it and its directory are the user's own (see the header); else undefined. */
function readOwnFile(dir: string, file: string): Buffer | undefined {
  if (!isOwnPrivateDir(dir)) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    return st.isFile() && isOwnAndPrivate(st) ? readFileSync(fd) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `data` as `file` whole or not at all (a temporary file renamed), private to the user,
 * then removes the oldest caches beyond KEEP_FILES. A cache needs no fsync: a torn one is
 * rejected by V8, or not there, and either way only costs the compile.
 */
function saveOwnFile(dir: string, file: string, data: Buffer): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    // .cache and pgkeep are made where missing, never the home directory itself.
    if (!existsSync(dirname(dirname(dir)))) return false;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!isOwnPrivateDir(dir)) return false;
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // not written, or already renamed
    }
    return false;
  }
  removeOldest(dir);
  return true;
}

function removeOldest(dir: string): void {
  try {
    const caches = readdirSync(dir)
      .filter((name) => CACHE_FILE.test(name))
      .map((name) => ({ name, mtimeMs: lstatSync(join(dir, name)).mtimeMs }))
      .sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const { name } of caches.slice(KEEP_FILES)) unlinkSync(join(dir, name));
  } catch {
    // another run removed one first; the next save tidies up
  }
}
