/**
 * archive-get --prefetch N: recovery runs restore_command once per segment, one after the other,
 * and each run pays a process start and the segment's decompression while replay waits. With a
 * prefetch depth, a detached filler process fetches the next N segments of the timeline into
 * `pgkeep-prefetch/` beside %p (pg_wal/pgkeep-prefetch), and archive-get renames a segment from
 * there when it has it: the decompression and the writing happen while recovery replays the
 * segments before. pgBackRest's asynchronous archive-get and pg_probackup's prefetch do the same.
 *
 * Safe to serve:
 *   - a prefetched segment is complete, verified against the archive's checksum and fsynced
 *     before it gets its name (`<segment>.<xxh64>`, core/prefetch-plan.ts);
 *   - it is served only while the archive holds that very content: archive-get reads the
 *     archive's header first, and looks for the name with that checksum;
 *   - anything else (not prefetched yet, a filler that failed, a full disk) is a direct fetch,
 *     as without --prefetch, which reports its own errors.
 * One filler at a time: it holds `.lock` (its pid, created exclusively); a lock whose process is
 * gone is taken over. A filler stops at the first segment the archive does not hold, and skips
 * those recovery has already asked for (`.served`, written by archive-get).
 *
 * After recovery the directory holds at most N unused segments. The first archive-push from
 * pg_wal once neither recovery.signal nor standby.signal is present removes it (a promoted
 * server pushes its new timeline's history file at once).
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from '../../errors.js';
import { debugLine } from '../../debug.js';
import { isPrefetchable, isServed, planPrefetch, prefetchedName, prefetchedSegment, segmentsAfter } from '../../core/prefetch-plan.js';
import { statArchivedWal, type ArchivedWal } from '../../repository/wal-archive.js';
import type { ArchiveContext } from './archive-context.js';
import { copyArchivedWal } from './copy-archived-wal.js';

/** The directory beside %p (in pg_wal) that prefetched segments wait in. */
export const PREFETCH_DIR = 'pgkeep-prefetch';
/** The deepest prefetch: 256 segments of 16 MB are 4 GB of pg_wal. */
export const MAX_PREFETCH = 256;

/** A require that works in dist/ (ESM) and in the archive bundle (CommonJS) alike, as in codecs.ts. */
const requireLazily = createRequire(import.meta.url);

const LOCK = '.lock';
/** The segment recovery asked for last: the filler skips it and those before it. */
const SERVED = '.served';
/** How long a lock with no pid in it yet counts as a filler starting up. */
const EMPTY_LOCK_GRACE_MS = 10_000;

/** Starts a filler for the `depth` segments after `served`, %p being `dest`. */
export type PrefetchStarter = (served: string, dest: string, depth: number) => void;

export function prefetchDirFor(dest: string): string {
  return join(dirname(dest), PREFETCH_DIR);
}

/**
 * Notes that recovery is asking for `name`, before it is taken from the directory: a filler
 * that listed the directory after the take then still knows not to fetch it again, and one
 * that fell behind recovery skips ahead. Only into an existing directory (a filler makes it).
 */
export async function markServed(name: string, dest: string): Promise<void> {
  if (!isPrefetchable(name)) return;
  await writeFile(join(prefetchDirFor(dest), SERVED), name).catch(() => undefined);
}

/** Renames the prefetched copy of `info` into `dest`: false when there is none (with this content). */
export async function takePrefetched(info: ArchivedWal, dest: string): Promise<boolean> {
  if (!isPrefetchable(info.name)) return false;
  try {
    await rename(join(prefetchDirFor(dest), prefetchedName(info.name, info.checksum)), dest);
    return true;
  } catch {
    return false; // none prefetched, or the directory is unusable: fetch it directly
  }
}

/**
 * After `served` was handed to recovery: removes the entries recovery has gone past, and starts a
 * filler when no more than half of the `depth` segments ahead are held, none is running, and the
 * archive holds the first segment it would fetch.
 * Never throws: the segment is served, and prefetching is only ever an optimisation.
 */
export async function tendPrefetch(ctx: ArchiveContext, served: string, dest: string, depth: number, start: PrefetchStarter): Promise<void> {
  if (!isPrefetchable(served) || depth <= 0) return;
  const dir = prefetchDirFor(dest);
  try {
    const entries = await readdir(dir).catch((e: unknown) => {
      if (errnoCode(e) === 'ENOENT') return [] as string[];
      throw e;
    });
    const plan = planPrefetch(served, entries, depth, ctx.instance.walSegSize);
    await Promise.all(plan.stale.map((entry) => unlink(join(dir, entry)).catch(() => undefined)));
    if (!plan.refill || (await fillerRunning(dir))) return;
    // At the end of the archive (a standby following it, the last segments of a recovery) a
    // filler would find nothing: the first segment it would fetch is looked up first.
    const first = segmentsAfter(served, depth, ctx.instance.walSegSize).find((s) => !plan.held.has(s));
    if (first === undefined || !(await statArchivedWal(ctx.store, ctx.instance.name, first))) return;
    start(served, dest, depth);
    debugLine(`prefetch filler started after ${served}`);
  } catch {
    /* a prefetch directory that cannot be tended costs only speed */
  }
}

/**
 * The filler: fetches the `depth` segments after `served` that the directory does not hold yet,
 * in order, stopping at the first the archive does not hold. Returns the names fetched; none when
 * another filler holds the lock.
 */
export async function fillPrefetch(ctx: ArchiveContext, served: string, dest: string, depth: number): Promise<string[]> {
  const dir = prefetchDirFor(dest);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!(await takeLock(dir))) return [];
  const fetched: string[] = [];
  try {
    const held = new Set((await readdir(dir)).map(prefetchedSegment));
    const segSize = ctx.instance.walSegSize;
    for (const name of segmentsAfter(served, depth, segSize)) {
      if (held.has(name) || isServed(name, await readFile(join(dir, SERVED), 'utf8').catch(() => ''), segSize)) continue;
      const info = await statArchivedWal(ctx.store, ctx.instance.name, name);
      if (!info) break;
      await copyArchivedWal(ctx, info, join(dir, prefetchedName(name, info.checksum)), join(dir, `.${name}.${process.pid}.tmp`));
      fetched.push(name);
    }
  } finally {
    await unlink(join(dir, LOCK)).catch(() => undefined);
  }
  return fetched;
}

/** Takes the filler's lock: false when a live filler holds it. */
async function takeLock(dir: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(join(dir, LOCK), 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return true;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') return false;
      const holder = await lockHolder(dir);
      if (holder === undefined || holder.alive) return false;
      // Left by a filler that died: clear it and its temporary files, then try once more.
      await clearDeadFiller(dir, holder.text);
    }
  }
  return false;
}

/**
 * Removes a dead filler's temporary files (named with its pid) and its lock, the lock only if it
 * still names that filler: another filler may have cleared it and taken the lock meanwhile.
 */
async function clearDeadFiller(dir: string, pidText: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(entries.filter((e) => pidText !== '' && e.endsWith(`.${pidText}.tmp`)).map((e) => unlink(join(dir, e)).catch(() => undefined)));
  if ((await readFile(join(dir, LOCK), 'utf8').catch(() => undefined)) === pidText) await unlink(join(dir, LOCK)).catch(() => undefined);
}

/** Whether the lock is held by a process that is alive. */
async function fillerRunning(dir: string): Promise<boolean> {
  return (await lockHolder(dir))?.alive ?? false;
}

/** The lock's content and whether the process it names is alive; undefined when there is no lock. */
async function lockHolder(dir: string): Promise<{ text: string; alive: boolean } | undefined> {
  let text: string;
  let age: number;
  try {
    text = await readFile(join(dir, LOCK), 'utf8');
    age = Date.now() - (await stat(join(dir, LOCK))).mtimeMs;
  } catch {
    return undefined;
  }
  // Created, its pid not written yet: alive if that was a moment ago.
  if (text === '') return { text, alive: age < EMPTY_LOCK_GRACE_MS };
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) return { text, alive: false };
  try {
    process.kill(pid, 0);
    return { text, alive: true };
  } catch (e) {
    return { text, alive: errnoCode(e) === 'EPERM' };
  }
}

/**
 * The starter archive-get uses: this very pgkeep again (`bin/run.js archive-get --prefetch-fill`),
 * detached, with no output, so that it outlives restore_command without holding it up.
 */
export function detachedFiller(repo: string, instance: string): PrefetchStarter {
  return (served, dest, depth) => {
    // Loaded here, not with the module (1.3 ms): archive-push and most archive-get runs start none.
    const { spawn } = requireLazily('node:child_process') as typeof import('node:child_process');
    const args = [process.argv[1]!, 'archive-get', '-B', repo, '--instance', instance, '--wal-file-path', dest, '--wal-file-name', served, '--prefetch', String(depth), '--prefetch-fill'];
    spawn(process.execPath, args, { detached: true, stdio: 'ignore' }).unref();
  };
}

/**
 * Removes pg_wal/pgkeep-prefetch once the server is out of recovery: called by archive-push with
 * the file it pushed (%p). Only for a file of a data directory's pg_wal, and only when neither
 * recovery.signal nor standby.signal is there (a standby archiving with archive_mode=always
 * is still replaying). Never throws.
 */
export async function removePrefetchAfterRecovery(walFile: string): Promise<void> {
  const walDir = dirname(walFile);
  if (basename(walDir) !== 'pg_wal') return;
  const dir = join(walDir, PREFETCH_DIR);
  try {
    await stat(dir);
  } catch {
    return;
  }
  const dataDir = dirname(walDir);
  for (const signal of ['recovery.signal', 'standby.signal']) {
    if (await stat(join(dataDir, signal)).then(() => true, () => false)) return;
  }
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
