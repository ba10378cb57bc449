/**
 * Export's scratch files: where a file with more page deltas than are read side by side is
 * rebuilt before it goes into the archive (docs/export.md). They live in a directory of the
 * user's (--tmp-dir), not the repository, so the repository's clean-up of temporaries never sees
 * them: an export killed outright (SIGKILL, the OOM killer) would leave up to one data file per
 * thread, hidden. Each name says which host and process wrote it, and the next export that uses
 * the directory removes those whose writer, on this host, is gone. A file of another host is
 * left alone: its writer cannot be asked whether it still runs.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, readdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PgkeepError } from '../../errors.js';
import { processAlive, TEMPORARY_NAME, temporaryName, temporaryOwnerPid } from '../../storage/object-key.js';

const SCRATCH_PREFIX = '.pgkeep-export.';

export interface ScratchFiles {
  /** A new name in the directory for the next scratch file. */
  next: () => string;
  /** Scratch files that exports gone from this host had left in the directory, now removed. */
  removed: string[];
}

/**
 * Scratch files in `dir` for `files` files that need one, once `dir` is known to be a directory
 * this process can write; checked before the archive begins so that a bad --tmp-dir fails before
 * anything is written. Leftovers of dead exports of this host are removed first.
 */
export async function prepareScratchFiles(dir: string, files: number, backupId: string, maxOpenDeltas: number): Promise<ScratchFiles> {
  const problem = await directoryProblem(dir);
  if (problem) {
    throw new PgkeepError(
      'INVALID_ARGUMENT',
      `scratch directory ${dir} ${problem}: ${files} file(s) of backup ${backupId} have more than ${maxOpenDeltas} page deltas and are rebuilt through a scratch file`,
      'give --tmp-dir DIR, a directory this user can write with room for one data file (up to 1 GiB) per -j thread',
    );
  }
  const host = hostTag(hostname());
  const removed = await removeLeftovers(dir, host);
  const run = randomBytes(4).toString('hex');
  let n = 0;
  return { next: () => join(dir, temporaryName(`${SCRATCH_PREFIX}${host}`, process.pid, `${run}${(n++).toString(16)}`)), removed };
}

/** The host name as it can stand in a file name (no dots: the name's parts are split on them). */
export function hostTag(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, '-') || 'host';
}

/**
 * Best effort: the export needs none of this, so a directory it cannot list, or a leftover it
 * may not remove (another user's, in a shared directory such as /tmp with its sticky bit), is
 * passed over rather than failing the export.
 */
async function removeLeftovers(dir: string, host: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const pid = temporaryOwnerPid(name);
    if (pid === undefined || name.replace(TEMPORARY_NAME, '') !== `${SCRATCH_PREFIX}${host}`) continue;
    if (pid === process.pid || processAlive(pid)) continue;
    const path = join(dir, name);
    if (await unlink(path).then(() => true, () => false)) removed.push(path);
  }
  return removed;
}

/** Why `dir` cannot take new files, or undefined when it can. */
async function directoryProblem(dir: string): Promise<string | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return 'is not a directory';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be used (${(e as Error).message})`;
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch {
    return 'is not writable by this user';
  }
}
