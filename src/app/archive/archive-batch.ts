/**
 * archive-push --batch-size N: after the file PostgreSQL asked for, push up to N - 1 more of the
 * files waiting in pg_wal/archive_status (a `.ready` file each), in the archiver's own order, and
 * mark each one `.done` once it is durable in the archive, so that the archiver does not start
 * archive_command for it. Every push starts a process, and its start-up costs more than pushing a
 * segment does: a write burst outran one-at-a-time archiving (docs/benchmarks.md, "Does archiving
 * keep up?"). pg_probackup's archive-push does the same (its --batch-size).
 *
 * Safe for PostgreSQL's bookkeeping: the archiver renames `.ready` to `.done` itself after a
 * success, and the checkpointer removes a segment only once it is `.done`; since PostgreSQL 15 the
 * archiver checks that a `.ready` file still exists before it archives it (older ones scan the
 * directory each time). A rename lost in a crash costs only a second push of the same content,
 * which succeeds as 'already-archived'.
 *
 * Files go in ascending order and the batch stops at the first that fails: the archive stays a
 * prefix of what PostgreSQL has to archive (await-archived-segments.ts relies on that), and the
 * failing file stays `.ready`, so that PostgreSQL asks for it and reports the error itself.
 */
import { readdir, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode, errorMessage } from '../../errors.js';
import { isWalFileName } from '../../repository/wal-archive.js';
import type { ArchiveContext } from './archive-context.js';
import { archivePush, walFileOnDisk } from './archive-push.js';

/** The most files one archive-push takes: bounded so that one invocation stays short. */
export const MAX_BATCH_SIZE = 1000;

const READY = '.ready';
const HISTORY = /^[0-9A-F]{8}\.history$/;

export interface BatchResult {
  /** The extra files pushed and marked done, in order. */
  pushed: string[];
  /** The file the batch stopped at, left `.ready` for PostgreSQL to push, and why. */
  stopped?: { name: string; reason: string };
}

/**
 * Pushes up to `limit` files waiting beside `walPath` (PostgreSQL's %p), other than `walName`,
 * after `walName` itself was pushed. Nothing happens when %p is not a file of pg_wal named %f
 * (a wrapper script may pass a copy), or there is no archive_status directory beside it. Never
 * throws: `walName` is archived, and failing its archive_command for an extra would have
 * PostgreSQL push it again and again.
 */
export async function pushWaitingFiles(ctx: ArchiveContext, walPath: string, walName: string, limit: number): Promise<BatchResult> {
  const result: BatchResult = { pushed: [] };
  if (limit <= 0) return result;
  const path = walFileOnDisk(walPath);
  if (basename(path) !== walName) return result;
  const walDir = dirname(path);
  const statusDir = join(walDir, 'archive_status');
  let entries: string[];
  try {
    entries = await readdir(statusDir);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') result.stopped = { name: statusDir, reason: `could not list it (${errorMessage(e)})` };
    return result;
  }
  for (const name of waitingInArchiverOrder(entries, walName).slice(0, limit)) {
    try {
      await archivePush(ctx, join(walDir, name), name, false);
    } catch (e) {
      result.stopped = { name, reason: errorMessage(e) };
      return result;
    }
    try {
      await rename(join(statusDir, name + READY), join(statusDir, name + '.done'));
    } catch (e) {
      // Archived all the same: PostgreSQL pushes it once more, which succeeds.
      if (errnoCode(e) !== 'ENOENT') {
        result.stopped = { name, reason: `archived, but its ${READY} file could not be renamed (${errorMessage(e)})` };
        return result;
      }
    }
    result.pushed.push(name);
  }
  return result;
}

/**
 * The names of `.ready` files in the order PostgreSQL's archiver takes them: timeline history
 * files first, then the rest by name (which is by timeline, then position), without `exclude`.
 */
export function waitingInArchiverOrder(statusEntries: readonly string[], exclude: string): string[] {
  const names = statusEntries
    .filter((e) => e.endsWith(READY))
    .map((e) => e.slice(0, -READY.length))
    .filter((n) => n !== exclude && isWalFileName(n));
  const history = names.filter((n) => HISTORY.test(n)).sort();
  const rest = names.filter((n) => !HISTORY.test(n)).sort();
  return [...history, ...rest];
}
