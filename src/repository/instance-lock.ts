/**
 * Instance locks: one writer file and any number of reader entries per instance, in `locks/`.
 *
 *   locks/<instance>.lock                    the writer: backup (kind `append`), or merge, delete,
 *                                            del-instance (kind `exclusive`); one at a time
 *   locks/<instance>.readers/<pid>-<r>.json  readers (kind `shared`): restore, validate, export
 *   locks/<instance>.lock.break              held for an instant by whoever breaks a dead writer
 *
 * Each file holds its owner (pid, host, command, start time, and for the writer its kind), so a
 * refused command can name the one in its way. Files appear whole: the content is written under a
 * temporary name first, then linked (writer: link(2) fails if the name exists, which is the
 * exclusive create) or renamed (reader: the name is unique) into place.
 *
 * Conflicts: readers run beside each other and beside an `append` writer (a backup only adds a
 * new backup); an `exclusive` writer changes or removes existing backups, so it excludes readers
 * both ways. Why no reader and exclusive writer can both proceed:
 *
 *   - a reader first makes its entry visible (R1), then reads the writer file (R2);
 *   - an exclusive writer first creates the writer file (W1), then lists the reader entries (W2);
 *   - the side that sees the other withdraws (removes its own entry or file) and fails or waits.
 *
 * If R1 comes before W2, the writer sees the reader at W2. Otherwise W2 came before R1, hence W1
 * (before W2) came before R2 (after R1), and the reader sees the writer at R2. So at least one side
 * sees the other. Both may see each other and both withdraw; waiting callers then retry after a
 * jittered pause.
 *
 * An owner whose process is gone (same host, pid not alive, or alive but started later than the
 * owner recorded: a reused pid) is broken, and the caller is told. A reader entry has a unique name,
 * so removing a dead one can only remove that one. The writer file's name is shared: breakers take
 * the `.break` guard (exclusive create), check under it that the file still holds the same dead
 * owner, and only then remove it, so that one breaker never removes the lock a faster one has
 * just taken. Owners on another host are never broken: their pid means nothing here.
 *
 * This is a POSIX-file lock: an object-store repository will need its own (conditional writes)
 * behind the same function.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { errnoCode, fromIoError } from '../errors.js';
import { giveCreatedDirs, givePath, ownerForNewPaths, type PathOwner } from '../storage/repository-owner.js';

/** shared: restore, validate, export. append: backup. exclusive: merge, delete, del-instance. */
export type LockKind = 'shared' | 'append' | 'exclusive';

export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
  /** The writer file's kind; files written before readers existed have none and count as exclusive. */
  kind?: LockKind;
  /** Start time of the owner process (Linux /proc clock ticks), to tell a reused pid from the owner. */
  pidStart?: number;
  /** Random: lets `release` remove only its own writer file. */
  token?: string;
}

export interface InstanceLock {
  readonly kind: LockKind;
  release(): Promise<void>;
}

/** Who is in the way: the owner recorded in `path`, or none when the file cannot be read as one. */
export interface LockHolder {
  path: string;
  owner: LockOwner | undefined;
  /** The owner runs on another host: never broken automatically. */
  foreign: boolean;
}

export type LockAttempt = { lock: InstanceLock; holder?: undefined } | { lock?: undefined; holder: LockHolder };

/** Told about each dead owner's file the attempt removed. */
export type OnBroken = (owner: LockOwner, path: string) => void;

export function lockPaths(root: string, instance: string) {
  const dir = join(root, 'locks');
  return {
    dir,
    writer: join(dir, `${instance}.lock`),
    guard: join(dir, `${instance}.lock.break`),
    readers: join(dir, `${instance}.readers`),
    /** Run as root in another user's repository: that user, given the files made here (repository-owner.ts). */
    fileOwner: ownerForNewPaths(root),
  };
}

/**
 * One attempt at the instance's lock of `kind`: the lock, or the holder in the way (after any dead
 * owner found on the way was broken). Never waits; the caller decides whether to try again.
 */
export async function tryInstanceLock(root: string, instance: string, kind: LockKind, command: string, onBroken: OnBroken): Promise<LockAttempt> {
  const paths = lockPaths(root, instance);
  const me = ownerHere(command, kind);
  return kind === 'shared' ? tryReader(paths, me, onBroken) : tryWriter(paths, me, onBroken);
}

const ATTEMPTS = 5;

async function tryWriter(paths: ReturnType<typeof lockPaths>, me: LockOwner, onBroken: OnBroken): Promise<LockAttempt> {
  await makeDir(paths.dir, paths.fileOwner);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // W1: create the writer file.
    if (!(await createExclusive(paths, paths.writer, me))) {
      const found = await readOwnerFile(paths.writer);
      if (found === 'missing') continue; // released in between
      if (found !== 'unreadable' && isDeadHere(found.owner)) {
        await breakWriter(paths, found, onBroken);
        continue;
      }
      return { holder: holderOf(paths.writer, found) };
    }
    const release = () => removeIfOwn(paths.writer, me.token!);
    // W2: an exclusive writer lists the readers; a live one makes it withdraw.
    if (me.kind === 'exclusive') {
      const reader = await liveReader(paths.readers, onBroken);
      if (reader) {
        await release();
        return { holder: reader };
      }
    }
    return { lock: { kind: me.kind!, release } };
  }
  return { holder: await currentHolder(paths.writer) };
}

async function tryReader(paths: ReturnType<typeof lockPaths>, me: LockOwner, onBroken: OnBroken): Promise<LockAttempt> {
  // R1: the entry becomes visible whole, under its unique name.
  const name = `${me.pid}-${randomBytes(6).toString('hex')}`;
  const entry = join(paths.readers, `${name}.json`);
  const tmp = join(paths.readers, `.${name}.tmp`);
  for (let attempt = 0; ; attempt++) {
    try {
      await giveCreatedDirs(paths.fileOwner, await mkdir(paths.readers, { recursive: true, mode: 0o700 }), paths.readers);
      await writeFile(tmp, JSON.stringify(me), { mode: 0o600, flag: 'wx' });
      await givePath(paths.fileOwner, tmp);
      break;
    } catch (e) {
      // The last reader to leave removed the empty directory in between: make it again.
      if (errnoCode(e) !== 'ENOENT' || attempt >= ATTEMPTS) throw fromIoError(e, 'create', tmp);
    }
  }
  await rename(tmp, entry).catch((e: unknown) => {
    throw fromIoError(e, 'create', entry);
  });
  const release = async () => {
    await unlink(entry).catch(() => undefined);
    // The last reader out removes the directory (rmdir fails while any entry or temporary is in it).
    await rmdir(paths.readers).catch(() => undefined);
  };
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // R2: only an exclusive writer is in a reader's way (a backup only adds).
    const found = await readOwnerFile(paths.writer);
    if (found === 'missing') return { lock: { kind: 'shared', release } };
    if (found !== 'unreadable' && (found.owner.kind ?? 'exclusive') !== 'exclusive') return { lock: { kind: 'shared', release } };
    if (found !== 'unreadable' && isDeadHere(found.owner)) {
      await breakWriter(paths, found, onBroken);
      continue;
    }
    await release();
    return { holder: holderOf(paths.writer, found) };
  }
  await release();
  return { holder: await currentHolder(paths.writer) };
}

/** The first reader entry whose process lives (or lives elsewhere); dead ones on this host are broken. */
async function liveReader(dir: string, onBroken: OnBroken): Promise<LockHolder | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw fromIoError(e, 'list', dir);
  }
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(dir, name);
    const found = await readOwnerFile(path);
    if (found === 'missing') continue; // released in between
    if (found !== 'unreadable' && isDeadHere(found.owner)) {
      // The name is unique to that reader: removing it cannot remove anyone else's entry.
      if (await unlink(path).then(() => true, () => false)) onBroken(found.owner, path);
      continue;
    }
    return holderOf(path, found);
  }
  return undefined;
}

/**
 * Removes the writer file left by a dead owner, under the break guard, and only if it still holds
 * exactly what was read: another breaker may have removed it and a live writer taken its place.
 */
async function breakWriter(paths: ReturnType<typeof lockPaths>, seen: { owner: LockOwner; text: string }, onBroken: OnBroken): Promise<void> {
  const me = ownerHere('break', undefined);
  if (!(await createExclusive(paths, paths.guard, me))) {
    const guard = await readOwnerFile(paths.guard);
    // A breaker holds the guard for an instant; one that died holding it leaves it behind.
    if (guard !== 'missing' && (guard === 'unreadable' || isDeadHere(guard.owner))) await unlink(paths.guard).catch(() => undefined);
    else await sleep(50);
    return;
  }
  try {
    const now = await readOwnerFile(paths.writer);
    if (now !== 'missing' && now !== 'unreadable' && now.text === seen.text) {
      await unlink(paths.writer);
      onBroken(seen.owner, paths.writer);
    }
  } finally {
    await removeIfOwn(paths.guard, me.token!);
  }
}

async function currentHolder(path: string): Promise<LockHolder> {
  const found = await readOwnerFile(path);
  return holderOf(path, found === 'missing' ? 'unreadable' : found);
}

function holderOf(path: string, found: { owner: LockOwner } | 'unreadable'): LockHolder {
  if (found === 'unreadable') return { path, owner: undefined, foreign: false };
  return { path, owner: found.owner, foreign: found.owner.host !== hostname() };
}

/** Creates `path` with the owner in it, whole, or returns false when it exists (link(2) never replaces). */
async function createExclusive(paths: ReturnType<typeof lockPaths>, path: string, owner: LockOwner): Promise<boolean> {
  const dir = paths.dir;
  const tmp = join(dir, `.${path.slice(dir.length + 1)}.${owner.pid}-${owner.token!}.tmp`);
  await writeFile(tmp, JSON.stringify(owner), { mode: 0o600, flag: 'wx' }).catch((e: unknown) => {
    throw fromIoError(e, 'create', tmp);
  });
  try {
    await givePath(paths.fileOwner, tmp);
    await link(tmp, path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') return false;
    throw fromIoError(e, 'create', path);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function removeIfOwn(path: string, token: string): Promise<void> {
  const found = await readOwnerFile(path);
  if (found !== 'missing' && found !== 'unreadable' && found.owner.token === token) await unlink(path).catch(() => undefined);
}

async function readOwnerFile(path: string): Promise<{ owner: LockOwner; text: string } | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 'missing';
    throw fromIoError(e, 'read', path);
  }
  try {
    const owner = JSON.parse(text) as LockOwner;
    if (typeof owner.pid !== 'number' || typeof owner.host !== 'string' || typeof owner.command !== 'string') return 'unreadable';
    return { owner, text };
  } catch {
    return 'unreadable';
  }
}

function ownerHere(command: string, kind: LockKind | undefined): LockOwner {
  const owner: LockOwner = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString(), token: randomBytes(6).toString('hex') };
  if (kind !== undefined) owner.kind = kind;
  const start = processStartTicks(process.pid);
  if (start !== undefined) owner.pidStart = start;
  return owner;
}

/** The owner ran on this host and its process is gone (or its pid now belongs to a later process). */
export function isDeadHere(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  if (!isProcessAlive(owner.pid)) return true;
  if (owner.pidStart === undefined) return false;
  const start = processStartTicks(owner.pid);
  return start !== undefined && start !== owner.pidStart;
}

/** True when `pid` is a live process on this host (signal 0 probes without touching it). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/<pid>/stat (start time after boot), or undefined where there is no /proc. */
function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

async function makeDir(dir: string, fileOwner: PathOwner | undefined): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    throw fromIoError(e, 'create', dir);
  });
  await giveCreatedDirs(fileOwner, first, dir);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
