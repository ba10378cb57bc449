// The restore's fsync queue (storage/posix-store.ts, FileSyncQueue): files are fsynced as they are
// handed over, a bounded number at a time, and drain waits for all of them. On real files in a
// temporary directory; the order of a restore's syncs against pg_control is watched with strace
// in test/e2e/durability-order.test.ts. The store's syncAhead, a backup's queue of stored files,
// is the same queue keyed by the store's keys, skipping files gone by their turn.
import { open, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import { isPgkeepError } from '../../src/errors.js';
import { FileSyncQueue, PosixStore } from '../../src/storage/posix-store.js';
import { makeTempDir } from '../helpers/tmp.js';

/** A real fsync of each path, slowed so that calls overlap, with the most ever in flight at once. */
function watchedSync() {
  const synced: string[] = [];
  let inFlight = 0;
  let most = 0;
  const sync = async (path: string) => {
    inFlight++;
    most = Math.max(most, inFlight);
    try {
      await sleep(5);
      const fh = await open(path, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      synced.push(path);
    } finally {
      inFlight--;
    }
  };
  return { sync, synced, most: () => most, inFlight: () => inFlight };
}

describe('FileSyncQueue', () => {
  let dir: string;
  let files: string[];
  beforeEach(async () => {
    dir = await makeTempDir('sync-queue');
    files = [];
    for (let i = 0; i < 12; i++) {
      const f = join(dir, `f${i}`);
      await writeFile(f, `file ${i}`);
      files.push(f);
    }
  });

  it('fsyncs every file handed over, once, never more than n at a time, starting before drain', async () => {
    const w = watchedSync();
    const q = new FileSyncQueue(2, w.sync);
    for (const f of files) q.add(f);
    // Started at once, not held until drain.
    expect(w.inFlight()).toBe(2);
    await sleep(30);
    expect(w.synced.length).toBeGreaterThan(0);
    await q.drain();
    expect([...w.synced].sort()).toEqual([...files].sort());
    expect(w.most()).toBe(2);
    expect(w.inFlight()).toBe(0);
  });

  it('drain waits for files added while earlier ones are in flight, and again after a second batch', async () => {
    const w = watchedSync();
    const q = new FileSyncQueue(3, w.sync);
    q.add(files[0]!);
    await sleep(1);
    for (const f of files.slice(1, 6)) q.add(f);
    await q.drain();
    expect(w.synced.length).toBe(6);
    for (const f of files.slice(6)) q.add(f);
    await q.drain();
    expect([...w.synced].sort()).toEqual([...files].sort());
    expect(w.most()).toBeLessThanOrEqual(3);
  });

  it('a drain with nothing asked for returns at once; with one sync in flight, waits for it', async () => {
    await expect(new FileSyncQueue(2).drain()).resolves.toBeUndefined();
    const w = watchedSync();
    const q = new FileSyncQueue(2, w.sync);
    q.add(files[0]!);
    await q.drain();
    expect(w.synced).toEqual([files[0]]);
  });

  it('with the real fsync: a missing file fails the drain with IO_ERROR naming it, after the syncs in flight settle, and starts nothing more', async () => {
    const missing = join(dir, 'gone', 'f');
    const q = new FileSyncQueue(2);
    q.add(files[0]!);
    q.add(missing);
    q.add(files[1]!);
    const err = await q.drain().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isPgkeepError(err) && err.code).toBe('IO_ERROR');
    expect((err as Error).message).toContain(missing);
    // Added after the failure: ignored, and the drain still reports the failure.
    q.add(files[2]!);
    await expect(q.drain()).rejects.toThrow(missing);
  });

  it('a failure that nobody drains is not an unhandled rejection, and later files are not synced', async () => {
    const w = watchedSync();
    const failing = async (path: string) => {
      if (path === files[0]) throw new Error(`no sync for ${path}`);
      await w.sync(path);
    };
    const q = new FileSyncQueue(1, failing);
    for (const f of files) q.add(f);
    // vitest fails the run on an unhandled rejection: give the failure time to surface.
    await sleep(50);
    expect(w.synced).toEqual([]);
    await expect(q.drain()).rejects.toThrow(`no sync for ${files[0]}`);
  });
});

describe('PosixStore.syncAhead', () => {
  it('fsyncs the committed objects handed over, skips one removed by its turn, and fails on a file that cannot be fsynced', async () => {
    const root = await makeTempDir('sync-ahead');
    const store = new PosixStore(root).deferringSync();
    for (const k of ['a/x', 'a/y', 'b/z']) await store.writeAtomic(k, `object ${k}`);
    const ahead = store.syncAhead();
    ahead.add(['a/x', 'a/y']);
    await rm(join(root, 'b', 'z'));
    ahead.add(['b/z']); // renamed or removed since: the name that replaced it is syncObjects' to make durable
    await ahead.drain();

    // /proc's files take no fsync (EINVAL): a failure that is not a missing file fails the drain, naming it.
    await symlink('/proc/self', join(root, 'proc'));
    const failing = store.syncAhead();
    failing.add(['a/x', 'proc/status']);
    const err = await failing.drain().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isPgkeepError(err) && err.code).toBe('IO_ERROR');
    expect((err as Error).message).toContain(join(root, 'proc', 'status'));
  });
});
