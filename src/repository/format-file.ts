/**
 * The repository root's format file, `pgkeep.repo`: what marks a directory as a pgkeep
 * repository, which format version it is in, and its identity. Every command opens the root
 * through `openRepositoryRoot`, so a repository written by a newer pgkeep is refused before
 * anything in it is read or changed.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errnoCode, fromIoError, PgkeepError } from '../errors.js';
import { isMissingObjectError } from '../storage/byte-store.js';
import { fsyncDir, PosixStore } from '../storage/posix-store.js';
import { FORMAT_FILE } from './layout.js';

export const REPOSITORY_FORMAT_VERSION = 1;
const FORMAT_NAME = 'pgkeep-repository';
const NOT_FOUND_HINT = 'run `pgkeep init -B DIR` to create one, or check -B / PGKEEP_REPO';

export interface RepositoryRoot {
  root: string;
  id: string;
  version: number;
  created: Date;
  store: PosixStore;
}

/** Create a repository in `root` (created 0700 if missing, otherwise it must be empty). */
export async function initRepositoryRoot(root: string): Promise<{ id: string; version: number }> {
  const dir = resolve(root);
  const existing = await statOrUndefined(dir);
  if (existing && !existing.isDirectory()) {
    throw new PgkeepError('REPO_NOT_EMPTY', `${dir} exists and is not a directory`, 'choose an empty directory or an existing pgkeep repository');
  }
  if (!existing) {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw fromIoError(e, 'create directory', dir);
    }
    await fsyncDir(dirname(dir));
  } else {
    const names = await readdir(dir).catch((e: unknown) => {
      throw fromIoError(e, 'list', dir);
    });
    if (names.includes(FORMAT_FILE)) {
      throw new PgkeepError('REPO_NOT_EMPTY', `${dir} is already a pgkeep repository`, 'use it as it is, or choose an empty directory for a new one');
    }
    if (names.length > 0) {
      throw new PgkeepError('REPO_NOT_EMPTY', `${dir} is not empty`, 'choose an empty directory or an existing pgkeep repository');
    }
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new PgkeepError('REPO_NOT_WRITABLE', `cannot write to ${dir}`, 'run pgkeep as a user that can write there, or fix the directory permissions', { cause: e });
  }
  const id = randomUUID();
  const body = { format: FORMAT_NAME, version: REPOSITORY_FORMAT_VERSION, id, created: new Date().toISOString() };
  await new PosixStore(dir).writeAtomic(FORMAT_FILE, `${JSON.stringify(body, null, 2)}\n`);
  return { id, version: REPOSITORY_FORMAT_VERSION };
}

/** Open an existing repository root, refusing what is not one and versions this build cannot read. */
export async function openRepositoryRoot(root: string): Promise<RepositoryRoot> {
  const dir = resolve(root);
  const st = await statOrUndefined(dir);
  if (!st?.isDirectory()) throw new PgkeepError('REPO_NOT_FOUND', `no repository at ${dir}: the directory does not exist`, NOT_FOUND_HINT);
  const store = new PosixStore(dir);
  let text: string;
  try {
    text = (await store.read(FORMAT_FILE)).toString('utf8');
  } catch (e) {
    if (isMissingObjectError(e)) throw new PgkeepError('REPO_NOT_FOUND', `${dir} is not a pgkeep repository (no ${FORMAT_FILE})`, NOT_FOUND_HINT);
    throw e;
  }
  const parsed = parseFormatFile(text, `${dir}/${FORMAT_FILE}`);
  return { root: dir, store, ...parsed };
}

function parseFormatFile(text: string, path: string): { id: string; version: number; created: Date } {
  const notOurs = (): PgkeepError =>
    new PgkeepError('REPO_FORMAT_UNSUPPORTED', `${path} is not a pgkeep repository format file`, 'check -B / PGKEEP_REPO; restore the file from a copy if it was damaged');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw notOurs();
  }
  if (typeof body !== 'object' || body === null) throw notOurs();
  const b = body as Record<string, unknown>;
  if (b.format !== FORMAT_NAME || typeof b.version !== 'number' || !Number.isInteger(b.version) || b.version < 1) throw notOurs();
  if (b.version > REPOSITORY_FORMAT_VERSION) {
    throw new PgkeepError(
      'REPO_FORMAT_UNSUPPORTED',
      `repository format version ${b.version} at ${path} is newer than this pgkeep supports (${REPOSITORY_FORMAT_VERSION})`,
      'upgrade pgkeep',
    );
  }
  const created = typeof b.created === 'string' ? new Date(b.created) : new Date(Number.NaN);
  if (typeof b.id !== 'string' || b.id === '' || Number.isNaN(created.getTime())) throw notOurs();
  return { id: b.id, version: b.version, created };
}

async function statOrUndefined(path: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await stat(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw fromIoError(e, 'stat', path);
  }
}
