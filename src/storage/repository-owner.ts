/**
 * Who owns what pgkeep creates in a repository. The repository usually belongs to postgres,
 * whose archive_command pushes WAL into it. Run as root there (sudo, a root cron job), pgkeep
 * would leave root-owned files and directories out of postgres's reach: archive-push could no
 * longer read an instance.json that `set-config` rewrote, a backup run as postgres could not
 * enter a locks directory root made, nor `delete` remove a backup root took. So, as root,
 * everything created in a repository whose root directory belongs to another user is given to
 * that user (SQLite does the same with its -wal and -shm files). Otherwise nothing changes hands.
 */
import { statSync } from 'node:fs';
import { lchown, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fromIoError } from '../errors.js';

export interface PathOwner {
  uid: number;
  gid: number;
}

const owners = new Map<string, PathOwner | undefined>();

/** The owner to give new paths under `root` (a repository's root directory), or undefined: keep the creator's. */
export function ownerForNewPaths(root: string): PathOwner | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  const dir = resolve(root);
  if (!owners.has(dir)) {
    const st = statSync(dir, { throwIfNoEntry: false });
    owners.set(dir, st !== undefined && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : undefined);
  }
  return owners.get(dir);
}

/** Gives `path` (a file or directory just created, never followed if a link) to `owner`. */
export async function givePath(owner: PathOwner | undefined, path: string): Promise<void> {
  if (owner === undefined) return;
  try {
    await lchown(path, owner.uid, owner.gid);
  } catch (e) {
    throw fromIoError(e, 'chown', path);
  }
}

/** Gives the open file `fh` (at `path`, for messages) to `owner`. */
export async function giveFile(owner: PathOwner | undefined, fh: FileHandle, path: string): Promise<void> {
  if (owner === undefined) return;
  try {
    await fh.chown(owner.uid, owner.gid);
  } catch (e) {
    throw fromIoError(e, 'chown', path);
  }
}

/**
 * The directories `mkdir(dir, { recursive: true })` created, outermost first, given `first`, what
 * it returned (the outermost one it created, or undefined when `dir` existed).
 */
export function createdDirs(first: string | undefined, dir: string): string[] {
  if (first === undefined) return [];
  const created: string[] = [];
  for (let d = dir; d !== dirname(first); d = dirname(d)) created.push(d);
  return created.reverse();
}

/** Gives what `mkdir(dir, { recursive: true })` created (see createdDirs) to `owner`. */
export async function giveCreatedDirs(owner: PathOwner | undefined, first: string | undefined, dir: string): Promise<void> {
  for (const d of createdDirs(first, dir)) await givePath(owner, d);
}
