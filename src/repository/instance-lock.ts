/**
 * One writer per instance: backup, merge and delete take `locks/<instance>.lock`.
 *
 * The lock file is created with O_EXCL and holds who took it (pid, host, command, start time), so
 * a second writer can name the first in its error. A lock whose process is gone (same host, pid
 * not alive) is broken and the breaking is reported. This is a POSIX-file lock: an object-store
 * repository will need its own (conditional writes), behind the same two functions.
 */
import { hostname } from 'node:os';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, fromIoError, PgkeepError } from '../errors.js';

export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

export interface InstanceLock {
  release(): Promise<void>;
}

export async function acquireInstanceLock(root: string, instance: string, command: string, onBroken: (owner: LockOwner) => void): Promise<InstanceLock> {
  const dir = join(root, 'locks');
  const path = join(dir, `${instance}.lock`);
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    throw fromIoError(e, 'create', dir);
  });
  const me: LockOwner = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(JSON.stringify(me));
      await fh.sync();
      await fh.close();
      return { release: () => unlink(path).catch(() => undefined) };
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw fromIoError(e, 'create', path);
    }
    const owner = await readOwner(path);
    if (owner && owner.host === me.host && !isProcessAlive(owner.pid)) {
      onBroken(owner);
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (!owner) {
      // Written but not yet filled by its creator, or emptied by a crash between open and write.
      await new Promise((r) => setTimeout(r, 200));
      const again = await readOwner(path);
      if (!again) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      throw lockedError(instance, again);
    }
    throw lockedError(instance, owner);
  }
  throw new PgkeepError('LOCKED', `could not take the lock of instance ${instance}`, `remove ${path} if no pgkeep process is running`);
}

function lockedError(instance: string, o: LockOwner): PgkeepError {
  return new PgkeepError('LOCKED', `instance ${instance} is busy: "${o.command}" (pid ${o.pid} on ${o.host}) has held it since ${o.startedAt}`, 'wait for it to finish, then run the command again');
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    if (!text) return undefined;
    return JSON.parse(text) as LockOwner;
  } catch {
    return undefined;
  }
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
