import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PosixStore } from '../../src/storage/posix-store.js';
import { describeByteStoreContract } from './byte-store-contract.js';

describeByteStoreContract('posix', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeep-store-'));
  return { store: new PosixStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

// A backup's copy writes through this view: the same contract, with the fsyncs left to syncObjects
// (whose order against renames test/e2e/durability-order.test.ts watches with strace).
describeByteStoreContract('posix, deferring sync', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgkeep-store-'));
  return { store: new PosixStore(dir).deferringSync(), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  if (r.pid === undefined) throw new Error('could not spawn');
  return r.pid;
}

describe('PosixStore on disk', () => {
  let dir: string;
  let store: PosixStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-posix-'));
    store = new PosixStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('syncs committed objects of a deferring view, and names a missing one', async () => {
    const deferring = store.deferringSync();
    expect(deferring.defersSync).toBe(true);
    expect(store.defersSync).toBe(false);
    expect(deferring.deferringSync()).toBe(deferring);
    const w = await deferring.openWrite('d/e/f');
    await w.write(Buffer.from('bytes'));
    await w.commit();
    // Visible at once, before any sync, to the store it came from and to a plain one.
    expect((await store.read('d/e/f')).toString()).toBe('bytes');
    expect(await readdir(join(dir, 'd', 'e'))).toEqual(['f']);
    await deferring.syncObjects(['d/e/f', 'd/e/f']);
    await store.writeAtomic('d/g', 'more');
    await deferring.syncObjects(['d/g', 'd/e/f']);
    await expect(deferring.syncObjects(['d/e/missing'])).rejects.toMatchObject({ code: 'IO_ERROR', message: expect.stringContaining(join(dir, 'd', 'e', 'missing')) });
    await expect(deferring.syncObjects(['../outside'])).rejects.toThrow();
  });

  it('leaves no temporary after a successful atomic write', async () => {
    await store.writeAtomic('a/file', 'content');
    expect(await readdir(join(dir, 'a'))).toEqual(['file']);
  });

  it('stages bytes in a temporary beside the key until commit', async () => {
    const w = await store.openWrite('a/file');
    await w.write(Buffer.from('x'));
    const names = await readdir(join(dir, 'a'));
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(new RegExp(`^file\\.tmp\\.${process.pid}\\.[0-9a-f]+$`));
    await w.commit();
    expect(await readdir(join(dir, 'a'))).toEqual(['file']);
  });

  it('removes the temporary on abort', async () => {
    const w = await store.openWrite('a/file');
    await w.write(Buffer.from('x'));
    await w.abort();
    expect(await readdir(join(dir, 'a'))).toEqual([]);
  });

  it('creates directories 0700 and files 0600', async () => {
    await store.writeAtomic('d1/d2/f', 'x');
    expect((await stat(join(dir, 'd1'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'd1/d2'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'd1/d2/f'))).mode & 0o777).toBe(0o600);
  });

  it('cleans temporaries of dead writers and keeps live ones', async () => {
    await store.writeAtomic('b/keep', 'x');
    const dead = `keep.tmp.${deadPid()}.abcdef`;
    await writeFile(join(dir, 'b', dead), 'leftover');
    const live = await store.openWrite('b/other');
    await live.write(Buffer.from('in progress'));
    expect(await store.list('b')).toEqual(['keep']);

    const removed = await store.cleanupTemporaries('');
    expect(removed).toEqual([`b/${dead}`]);
    const names = await readdir(join(dir, 'b'));
    expect(names).not.toContain(dead);
    expect(names).toContain('keep');
    expect(names.some((n) => n.startsWith('other.tmp.'))).toBe(true);
    await live.commit();
    expect((await store.read('b/other')).toString()).toBe('in progress');
  });

  // Permission errors are covered end to end in test/e2e/bad-input.test.ts, where pgkeep runs as
  // the postgres user against a root-owned directory (root itself ignores permission bits).
});
