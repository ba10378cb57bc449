// The test harness itself, against real servers: every end-to-end test of pgkeep trusts these
// helpers to say "the restore is right", so they must be able to say "it is not" too.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, majorsUnderTest, type PgMajor } from '../helpers/cluster.js';
import { verifyDataChecksums } from '../helpers/page-checksum.js';
import { makeTempDir } from '../helpers/tmp.js';

// 15 (Debian) and 17 (npm) are always installed; majors added later are picked up here too.
const majors = majorsUnderTest();

it('finds PostgreSQL 15 and 17 installed', () => {
  expect(majors).toEqual(expect.arrayContaining([15, 17]));
});

describe.each(majors)('PostgreSQL %i', (major: PgMajor) => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await TestCluster.create({ major, name: `harness-${major}` });
  });
  afterAll(async () => {
    await cluster.destroy();
  });

  it('runs the requested major with checksums and replica WAL', async () => {
    const [version] = await cluster.query<{ server_version_num: string }>('SHOW server_version_num');
    expect(Math.floor(Number(version?.server_version_num) / 10000)).toBe(major);
    const [checksums] = await cluster.query<{ data_checksums: string }>('SHOW data_checksums');
    expect(checksums?.data_checksums).toBe('on');
    const [wal] = await cluster.query<{ wal_level: string }>('SHOW wal_level');
    expect(wal?.wal_level).toBe('replica');
    if (major >= 17) {
      const [summarize] = await cluster.query<{ summarize_wal: string }>('SHOW summarize_wal');
      expect(summarize?.summarize_wal).toBe('on');
    }
    expect(cluster.socketDir.length).toBeLessThan(92);
  });

  it('initialises pgbench with the invariant holding', async () => {
    await cluster.pgbenchInit(1);
    const invariant = await cluster.pgbenchInvariant();
    expect(invariant).toEqual({ abalance: 0n, tbalance: 0n, bbalance: 0n, delta: 0n, ok: true });
    const [accounts] = await cluster.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_accounts');
    expect(accounts?.n).toBe('100000');
  });

  it('keeps the invariant under a concurrent pgbench', async () => {
    const run = cluster.startPgbench({ clients: 2, seconds: 3 });
    await run.done;
    const [history] = await cluster.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_history');
    expect(Number(history?.n)).toBeGreaterThan(100);
    const invariant = await cluster.pgbenchInvariant();
    expect(invariant.ok, JSON.stringify(invariant, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).toBe(true);
  });

  it('reports a broken invariant', async () => {
    await cluster.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1');
    expect((await cluster.pgbenchInvariant()).ok).toBe(false);
    await cluster.query('UPDATE pgbench_accounts SET abalance = abalance - 1 WHERE aid = 1');
    expect((await cluster.pgbenchInvariant()).ok).toBe(true);
  });

  it('ends a pgbench run on stop()', async () => {
    const run = cluster.startPgbench({ clients: 2 });
    await new Promise((r) => setTimeout(r, 500));
    await run.stop();
    await run.done;
    expect((await cluster.pgbenchInvariant()).ok).toBe(true);
  });

  it('passes amcheck in every database and leaves no extension behind', async () => {
    await cluster.createDatabase('second');
    await cluster.pgbenchInit(1, 'second');
    await cluster.amcheck();
    const [ext] = await cluster.query<{ n: string }>(`SELECT count(*) AS n FROM pg_extension WHERE extname = 'amcheck'`);
    expect(ext?.n).toBe('0');
  });

  it('gives the same table digest across a restart, and a different one after a change', async () => {
    const before = await cluster.tableDigest();
    expect(Object.keys(before)).toEqual([
      'public.pgbench_accounts',
      'public.pgbench_branches',
      'public.pgbench_history',
      'public.pgbench_tellers',
    ]);
    expect(before['public.pgbench_accounts']).toMatch(/^100000:[0-9a-f]{32}$/);
    await cluster.restart();
    expect(await cluster.tableDigest()).toEqual(before);
    await cluster.query('UPDATE pgbench_branches SET filler = $1 WHERE bid = 1', ['changed']);
    const after = await cluster.tableDigest();
    expect(after['public.pgbench_branches']).not.toBe(before['public.pgbench_branches']);
    expect(after['public.pgbench_accounts']).toBe(before['public.pgbench_accounts']);
  });

  it('adopts a copied data directory owned by root and starts it on its own port', async () => {
    await expect(TestCluster.adopt(cluster.pgdata, { major })).rejects.toThrow(/postmaster\.pid/);
    const digest = await cluster.tableDigest();
    await cluster.stop();
    const target = await makeTempDir(`restore-${major}`, { owner: 'root' });
    const copy = join(target, 'data');
    // As a restore running as root would leave it: root-owned, too open.
    execFileSync('cp', ['-a', cluster.pgdata, copy]);
    execFileSync('chown', ['-R', 'root:root', copy]);
    execFileSync('chmod', ['0755', copy]);
    await cluster.start();
    const restored = await TestCluster.adopt(copy, { major });
    try {
      expect(restored.port).not.toBe(cluster.port);
      expect(restored.socketDir).not.toBe(cluster.socketDir);
      expect(await restored.tableDigest()).toEqual(digest);
      expect((await restored.pgbenchInvariant()).ok).toBe(true);
    } finally {
      await restored.destroy();
    }
    expect(existsSync(copy)).toBe(false);
  });

  it('creates a tablespace outside PGDATA and places a table in it', async () => {
    const location = await cluster.createTablespace('ts_one');
    expect(location.startsWith(cluster.pgdata)).toBe(false);
    await cluster.query('CREATE TABLE in_ts (id int PRIMARY KEY, note text) TABLESPACE ts_one');
    await cluster.query(`INSERT INTO in_ts SELECT g, 'row ' || g FROM generate_series(1, 1000) g`);
    await cluster.query('CHECKPOINT');
    const [path] = await cluster.query<{ p: string }>(`SELECT pg_relation_filepath('in_ts') AS p`);
    expect(path?.p).toMatch(/^pg_tblspc\/\d+\/PG_/);
    const versionDirs = readdirSync(location);
    expect(versionDirs).toHaveLength(1);
    expect(versionDirs[0]).toMatch(new RegExp(`^PG_${major}_`));
    expect((await cluster.tableDigest())['public.in_ts']).toMatch(/^1000:/);
  });

  it('verifies data checksums offline and catches a corrupted page', async () => {
    const [file] = await cluster.query<{ p: string }>(`SELECT pg_relation_filepath('pgbench_accounts') AS p`);
    await cluster.query('CHECKPOINT');
    await cluster.stop();
    await cluster.checksumsCheck();
    // The TypeScript port (used for majors without their own pg_checksums) must agree with
    // pg_checksums on the same files: clean here, tablespace included.
    const report = await verifyDataChecksums(cluster.pgdata, major);
    expect(report.failures).toEqual([]);
    expect(report.blocksScanned).toBeGreaterThan(1000);

    const handle = await open(join(cluster.pgdata, file?.p ?? 'missing'), 'r+');
    try {
      await handle.write(Buffer.from([0xde, 0xad]), 0, 2, 8192 * 3 + 4000); // inside block 3
    } finally {
      await handle.close();
    }
    await expect(cluster.checksumsCheck()).rejects.toThrow();
    const broken = await verifyDataChecksums(cluster.pgdata, major);
    expect(broken.failures.map((f) => [f.file.endsWith(file?.p ?? '?'), f.block])).toEqual([[true, 3]]);
  });

  it('destroys the cluster: server gone, files removed', async () => {
    await cluster.start();
    const [pid] = await cluster.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(pid?.pid).toBeGreaterThan(0);
    const root = cluster.root;
    await cluster.destroy();
    expect(cluster.isRunning()).toBe(false);
    expect(existsSync(cluster.pgdata)).toBe(false);
    expect(existsSync(root)).toBe(false);
  });
});
