// A chain longer than restore reads side by side (MAX_OPEN_DELTAS): twelve DELTA backups that
// each change the same table, with a truncation (DELETE and VACUUM cut the table's tail) and a
// regrowth along the way. Restore then rebuilds that table's files in place (the oldest sources
// streamed, the newer deltas applied one at a time: app/chain/rebuild-in-place.ts). The 10th and
// the 12th restore to exactly the tables recorded at each, and the restored servers start and
// pass amcheck. Export of the 12th rebuilds them through scratch files in --tmp-dir, which it
// removes (with the leftovers of a dead export of this host), and unpacks to the same tables;
// with no usable --tmp-dir it fails before writing. Merge of the 12th rebuilds those files
// through a scratch file beside the new generation, which it removes, and gives the same tables.
import { execFile, spawn } from 'node:child_process';
import { access, mkdir, readdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OPEN_DELTAS } from '../../src/app/chain/rebuild-in-place.js';
import { hostTag } from '../../src/app/export/scratch-files.js';
import { TestCluster } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

const CHAIN = 12;

describe('a chain longer than the deltas read at once', () => {
  let source: TestCluster;
  let fx: RepoFixture;
  const ids: string[] = [];
  const digests = new Map<string, Record<string, string>>();

  beforeAll(async () => {
    source = await TestCluster.create({ major: 15, name: 'longchain' });
    await source.query('CREATE TABLE t (id int PRIMARY KEY, v int, pad text)');
    await source.query("INSERT INTO t SELECT g, 0, repeat('x', 200) FROM generate_series(1, 20000) g");
    fx = await newRepo(source);
  });

  afterAll(async () => {
    await source?.destroy();
  });

  async function backup(mode: 'FULL' | 'DELTA'): Promise<string> {
    const digest = await source.tableDigest();
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', mode, '--stream', '-j', '2']));
    digests.set(id, digest);
    ids.push(id);
    return id;
  }

  async function restoreAndCheck(id: string): Promise<void> {
    const dest = join(await makeTempDir('restore'), 'data');
    const r = await fx.ok(['restore', '--instance', 'main', '-D', dest, '-i', id, '-j', '2']);
    expect(r.stdout).toContain(`backup ${id} restored`);
    await startAndCheck(dest, id);
  }

  async function startAndCheck(dest: string, id: string): Promise<void> {
    const c = await TestCluster.adopt(dest, { major: 15, name: `lc-${id.slice(-4)}` });
    try {
      expect(await c.tableDigest(), `tables of the restore of ${id}`).toEqual(digests.get(id));
      await c.amcheck();
    } finally {
      await c.destroy();
    }
  }

  it(`takes a FULL backup and ${CHAIN} DELTAs, each changing the same table`, async () => {
    expect(CHAIN - 2).toBeGreaterThan(MAX_OPEN_DELTAS); // the 10th is rebuilt in place too
    await backup('FULL');
    for (let k = 1; k <= CHAIN; k++) {
      // Pages all over the table change at every step: its main fork is a delta in every backup.
      await source.query(`UPDATE t SET v = v + ${k} WHERE id % 97 = ${k % 97} OR id % 1000 = 0`);
      if (k === 4) {
        // The tail of the table goes: fewer blocks in this backup than in the ones before it.
        await source.query('DELETE FROM t WHERE id > 12000');
        await source.query('VACUUM t');
      }
      if (k === 7) await source.query("INSERT INTO t SELECT g, 7, repeat('y', 200) FROM generate_series(12001, 16000) g");
      const id = await backup('DELTA');
      expect(id).not.toBe(ids[ids.length - 2]);
    }
    const [size] = await source.query<{ n: string }>("SELECT pg_relation_size('t')::text AS n");
    expect(Number(size!.n)).toBeGreaterThan(0);
  });

  it('restores the 10th and the 12th DELTA to the tables recorded at each', async () => {
    await restoreAndCheck(ids[10]!);
    await restoreAndCheck(ids[CHAIN]!);
  });

  it('exports the 12th through scratch files in --tmp-dir, removed after, to the same tables', async () => {
    const id = ids[CHAIN]!;
    const outDir = await makeTempDir('lc-export');
    const archive = join(outDir, 'chain.tar');

    // No usable scratch directory: refused before the archive begins.
    const missing = join(outDir, 'no-such-dir');
    const bad = await fx.run(['export', '--instance', 'main', '-i', id, '-o', archive, '--tmp-dir', missing]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(new RegExp(`scratch directory ${missing} does not exist: \\d+ file\\(s\\) of backup ${id} have more than ${MAX_OPEN_DELTAS} page deltas`));
    expect(await readdir(outDir)).toEqual([]);

    // Leftovers of earlier exports: this host's, by a process that is gone (removed, and said),
    // and two that must stay: another host's (its writer cannot be asked) and a live process's.
    const scratch = await makeTempDir('lc-scratch');
    const gonePid = await exitedPid();
    const host = hostTag(hostname());
    const left = `.pgkeep-export.${host}.tmp.${gonePid}.0123abcd0`;
    const otherHost = `.pgkeep-export.${host}-elsewhere.tmp.${gonePid}.0123abcd0`;
    const live = `.pgkeep-export.${host}.tmp.${process.pid}.0123abcd0`;
    for (const name of [left, otherHost, live]) await writeFile(join(scratch, name), 'x');
    const r = await fx.ok(['export', '--instance', 'main', '-i', id, '-o', archive, '--tmp-dir', scratch, '-j', '2']);
    expect(r.stdout).toContain(`backup ${id} exported`);
    expect(r.stderr).toContain(`removed ${join(scratch, left)}, a scratch file left by an earlier export on this host that did not finish`);
    expect((await readdir(scratch)).sort()).toEqual([otherHost, live].sort());
    expect(await readdir(outDir)).toEqual(['chain.tar']);

    const dest = join(await makeTempDir('lc-unpacked'), 'data');
    await mkdir(dest, { mode: 0o700 });
    await promisify(execFile)('tar', ['-xf', archive, '-C', dest]);
    await access(join(dest, 'global', 'pg_control'));
    await startAndCheck(dest, id);
  });

  it('merges the 12th into a FULL backup that restores to the same tables', async () => {
    const newest = ids[CHAIN]!;
    await fx.ok(['merge', '--instance', 'main', '-i', newest, '-j', '2']);
    const left = await readdir(join(fx.repo, 'instances', 'main', 'backups', newest), { recursive: true });
    expect(left.filter((p) => /\.tmp\./.test(p))).toEqual([]);
    await restoreAndCheck(newest);
  });
});

/** The pid of a process that has exited (not reused this soon: Linux hands pids out in turn). */
async function exitedPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}
