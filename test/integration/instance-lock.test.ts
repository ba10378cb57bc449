// Instance locks on a real directory, without a server: which commands run beside each other,
// which refuse or wait, how dead owners are broken and foreign ones kept. Locks taken by this
// process stand for other pgkeep processes (the owner pid is alive either way); dead owners are
// the pids of child processes that have exited.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { lockInstance, withInstanceLock, type LockingCommand, type LockingContext } from '../../src/app/instance-locking.js';
import type { InstanceLock, LockOwner } from '../../src/repository/instance-lock.js';
import { makeTempDir } from '../helpers/tmp.js';

interface Recorded {
  ctx: LockingContext;
  infos: string[];
  warnings: string[];
}

function context(root: string): Recorded {
  const infos: string[] = [];
  const warnings: string[] = [];
  return { ctx: { root, reporter: { info: (m) => infos.push(m), warn: (m) => warnings.push(m) } }, infos, warnings };
}

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function owner(fields: Partial<LockOwner> & Pick<LockOwner, 'pid' | 'command'>): LockOwner {
  return { host: hostname(), startedAt: '2026-01-01T00:00:00.000Z', ...fields };
}

describe('instance locks', () => {
  let root: string;
  let rec: Recorded;
  const take = (command: LockingCommand, wait?: number, instance = 'main') => lockInstance(rec.ctx, instance, command, wait);
  const writerFile = () => join(root, 'locks', 'main.lock');
  const readerEntries = async () => (await readdir(join(root, 'locks', 'main.readers')).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));

  beforeEach(async () => {
    root = await makeTempDir('locks');
    rec = context(root);
  });

  it('lets one writer in at a time, and names it to the second', async () => {
    const backup = await take('backup');
    await expect(take('merge')).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(new RegExp(`"backup" \\(pid ${process.pid} on .+\\) has held it since \\d{4}-`)) });
    await expect(take('backup')).rejects.toMatchObject({ code: 'LOCKED', hint: expect.stringContaining('--wait') });
    // Another instance is another lock.
    const other = await take('delete', undefined, 'other');
    await other.release();
    await backup.release();
    expect(existsSync(writerFile())).toBe(false);
    await (await take('delete')).release();
  });

  it('runs readers beside each other and beside a backup, in either order', async () => {
    const restore = await take('restore');
    const validate = await take('validate');
    const backup = await take('backup');
    const exp = await take('export');
    expect(await readerEntries()).toHaveLength(3);
    for (const l of [restore, validate, backup, exp]) await l.release();
    expect(existsSync(join(root, 'locks', 'main.readers'))).toBe(false); // the last reader out removes it
    expect(existsSync(writerFile())).toBe(false);
  });

  for (const writer of ['merge', 'delete', 'del-instance'] as const) {
    it(`keeps readers and ${writer} apart, both ways, and the refused side leaves nothing behind`, async () => {
      const restore = await take('restore');
      await expect(take(writer)).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining(`"restore" (pid ${process.pid}`) });
      expect(existsSync(writerFile())).toBe(false); // withdrew its writer file
      await restore.release();

      const w = await take(writer);
      await expect(take('validate')).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining(`"${writer}" (pid ${process.pid}`) });
      expect(await readerEntries()).toEqual([]); // withdrew its entry
      await w.release();
      await (await take('export')).release();
    });
  }

  it('never lets a reader and a merge both in when they start together', async () => {
    // Started a random 0-4 ms apart, so that each step of one lands between the steps of another.
    const later = (command: LockingCommand) => new Promise<void>((r) => setTimeout(r, Math.random() * 4)).then(() => take(command));
    for (let round = 0; round < 60; round++) {
      const attempts = await Promise.allSettled([later('restore'), later('merge'), later('validate')]);
      const held = attempts.filter((a): a is PromiseFulfilledResult<InstanceLock> => a.status === 'fulfilled').map((a) => a.value);
      const kinds = new Set(held.map((l) => l.kind));
      expect(kinds.has('exclusive') && kinds.has('shared'), `round ${round}`).toBe(false);
      for (const a of attempts) if (a.status === 'rejected') expect(a.reason).toMatchObject({ code: 'LOCKED' });
      for (const l of held) await l.release();
      expect(existsSync(writerFile())).toBe(false);
      expect(await readerEntries()).toEqual([]);
    }
  });

  it('breaks a writer file whose process is gone, and says so', async () => {
    const pid = deadPid();
    await mkdir(join(root, 'locks'));
    await writeFile(writerFile(), JSON.stringify(owner({ pid, command: 'merge', kind: 'exclusive' })));
    // A reader breaks it too (an exclusive writer is in its way).
    const restore = await take('restore');
    expect(rec.warnings).toEqual([`breaking the lock of instance main left by pid ${pid} (merge), which is gone`]);
    await restore.release();

    await writeFile(writerFile(), JSON.stringify(owner({ pid, command: 'backup', kind: 'append' })));
    const merge = await take('merge');
    expect(rec.warnings[1]).toBe(`breaking the lock of instance main left by pid ${pid} (backup), which is gone`);
    expect(JSON.parse(await readFile(writerFile(), 'utf8'))).toMatchObject({ pid: process.pid, command: 'merge', kind: 'exclusive' });
    await merge.release();
  });

  it('breaks a reader entry whose process is gone when a writer needs the instance', async () => {
    const pid = deadPid();
    await mkdir(join(root, 'locks', 'main.readers'), { recursive: true });
    const entry = join(root, 'locks', 'main.readers', `${pid}-0a0b0c.json`);
    await writeFile(entry, JSON.stringify(owner({ pid, command: 'restore' })));
    const del = await take('delete');
    expect(rec.warnings).toEqual([`breaking the lock of instance main left by pid ${pid} (restore), which is gone`]);
    expect(existsSync(entry)).toBe(false);
    await del.release();
  });

  it('treats a live pid that started after the owner as a reused pid: the owner is gone', async () => {
    await mkdir(join(root, 'locks'));
    await writeFile(writerFile(), JSON.stringify(owner({ pid: process.pid, command: 'backup', kind: 'append', pidStart: 1 })));
    const backup = await take('backup');
    expect(rec.warnings).toEqual([`breaking the lock of instance main left by pid ${process.pid} (backup), which is gone`]);
    await backup.release();
  });

  it('never breaks an owner on another host, and says how to remove it', async () => {
    await mkdir(join(root, 'locks', 'main.readers'), { recursive: true });
    await writeFile(writerFile(), JSON.stringify(owner({ pid: 1, host: 'db-elsewhere', command: 'delete', kind: 'exclusive' })));
    await expect(take('restore')).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringContaining('"delete" (pid 1 on db-elsewhere)'),
      hint: expect.stringContaining(`if no pgkeep runs on db-elsewhere any more, remove ${writerFile()}`),
    });
    expect(existsSync(writerFile())).toBe(true);

    await writeFile(writerFile(), JSON.stringify(owner({ pid: 1, host: 'db-elsewhere', command: 'backup', kind: 'append' })));
    const entry = join(root, 'locks', 'main.readers', '1-abcdef.json');
    await mkdir(join(root, 'locks', 'main.readers'), { recursive: true }); // the refused restore above removed it
    await writeFile(entry, JSON.stringify(owner({ pid: 1, host: 'db-elsewhere', command: 'export' })));
    await (await take('validate')).release(); // beside a backup, wherever it runs
    expect(existsSync(entry)).toBe(true);
    await expect(take('backup')).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining('"backup" (pid 1 on db-elsewhere)') });
    await writeFile(writerFile(), '');
    await expect(take('merge')).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining('cannot be read') });
    await unlink(writerFile());
    await expect(take('merge')).rejects.toMatchObject({ code: 'LOCKED', hint: expect.stringContaining(`remove ${entry}`) });
    expect(existsSync(entry)).toBe(true);
    expect(rec.warnings).toEqual([]);
  });

  it('waits for the holder to release the instance, saying once whom it waits for', async () => {
    const backup = await take('backup');
    const started = Date.now();
    setTimeout(() => void backup.release(), 900);
    const merge = await take('merge', 30);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(850);
    expect(waited).toBeLessThan(5000);
    expect(rec.infos).toEqual([`waiting for "backup" (pid ${process.pid} on ${hostname()}) to release instance main (up to 30 s)`]);

    // A reader waits for the merge without a limit (a bare --wait) and gets in once it is done.
    setTimeout(() => void merge.release(), 600);
    const restored = await withInstanceLock(rec.ctx, 'main', 'restore', Number.POSITIVE_INFINITY, async () => 'restored');
    expect(restored).toBe('restored');
    expect(rec.infos[1]).toBe(`waiting for "merge" (pid ${process.pid} on ${hostname()}) to release instance main`);
    expect(existsSync(writerFile())).toBe(false);
    expect(await readerEntries()).toEqual([]);
  });

  it('gives up after --wait=SECONDS, saying how long it waited', async () => {
    const restore = await take('restore');
    const started = Date.now();
    await expect(take('delete', 1)).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringMatching(/^instance main is still busy after waiting 1 s: "restore" \(pid \d+ on .+\) has held it since/),
      hint: expect.stringContaining('wait longer'),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(existsSync(writerFile())).toBe(false);
    await restore.release();
  });

  it('releases the lock when the work under it fails', async () => {
    await expect(withInstanceLock(rec.ctx, 'main', 'delete', undefined, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(existsSync(writerFile())).toBe(false);
    await expect(withInstanceLock(rec.ctx, 'main', 'export', undefined, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await readerEntries()).toEqual([]);
  });
});
