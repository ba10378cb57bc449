// The PostgreSQL 13-18 matrix (docs/versions.md): on every installed major, a FULL backup taken
// under pgbench load and a DELTA on top of it restore, as a chain, to a server that starts,
// recovers, and holds exactly the data of the DELTA's start (pgbench's invariant, the table
// digest taken right before it, amcheck, data checksums); validate passes for both backups.
// Small data (pgbench scale 1) so that six majors stay within a few minutes.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUPPORTED_MAJORS } from '../../src/postgres/server-versions.js';
import { TestCluster, availableMajors, binDir, invariantText, majorsUnderTest, type PgMajor } from '../helpers/cluster.js';
import { sleep } from '../helpers/faults.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture, type ShowBackup } from './pgkeep-fixture.js';

const MAJORS = majorsUnderTest();
const durations = new Map<PgMajor, number>();
const storedBytes = new Map<PgMajor, string>();

afterAll(() => {
  const lines = [...durations].map(([major, ms]) => `  PostgreSQL ${major}: ${(ms / 1000).toFixed(1)} s (${storedBytes.get(major) ?? 'no backups'})`);
  if (lines.length > 0) console.log(`version matrix, per major:\n${lines.join('\n')}`);
});

describe('the version matrix', () => {
  it('covers every supported major (13-18: Debian 15 and the pgNN npm packages)', () => {
    // A missing npm package must not shrink the matrix silently.
    expect(availableMajors()).toEqual([...SUPPORTED_MAJORS]);
  });
});

describe.each(MAJORS)('FULL and DELTA backup, chain restore on PostgreSQL %i', (major) => {
  let source: TestCluster;
  let fx: RepoFixture;
  let started: number;
  let fullId: string;
  let deltaId: string;
  let digestBeforeDelta: Record<string, string>;
  const restored: TestCluster[] = [];

  const backup = async (id: string): Promise<ShowBackup> => {
    const [inst] = await fx.showJson();
    const b = inst!.backups.find((x) => x.id === id);
    expect(b, `backup ${id} in show`).toBeDefined();
    return b!;
  };

  beforeAll(async () => {
    started = Date.now();
    source = await TestCluster.create({ major, name: `matrix${major}` });
    fx = await newRepo(source);
    await source.pgbenchInit(1);
  });

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await source?.destroy();
    durations.set(major, Date.now() - started);
  });

  it('runs the expected server, with data checksums', async () => {
    const [row] = await source.query<{ v: string; c: string }>(
      "SELECT current_setting('server_version_num') AS v, current_setting('data_checksums') AS c",
    );
    expect(Math.floor(Number(row!.v) / 10000)).toBe(major);
    expect(row!.c).toBe('on');
    // 15 is Debian's own build, every other major the npm package's.
    expect(binDir(major)).toBe(major === 15 ? '/usr/lib/postgresql/15/bin' : fileURLToPath(new URL(`../../node_modules/pg${major}/native/bin`, import.meta.url)));
  });

  it('takes a FULL backup while pgbench writes', async () => {
    const bench = source.startPgbench({ clients: 2 });
    const benchStart = Date.now();
    try {
      await sleep(500);
      // Uncompressed (not the zstd default): the DELTA test below compares stored bytes less the WAL's size.
      fullId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'none']));
      await sleep(Math.max(0, 2000 - (Date.now() - benchStart)));
    } finally {
      await bench.stop();
    }
    const b = await backup(fullId);
    expect(b.status).toBe('OK');
    expect(b.backup_mode).toBe('FULL');
    expect(b.stream).toBe(true);
    expect(b.checksums).toBe(true);
    expect(String(b.server_version).split('.')[0]).toBe(String(major));
    expect(Number(b.wal_bytes)).toBeGreaterThan(0);
    // Read from the backup's WAL by the WAL reader of this major (page magic, record layout).
    expect(b.recovery_xid).toMatch(/^[1-9]\d*$/);
    expect(Date.parse(String(b.recovery_time))).toBeLessThanOrEqual(Date.parse(String(b.end_time)));
    expect((await source.pgbenchInvariant()).delta).not.toBe(0n); // pgbench did write
  });

  it('takes a DELTA after more writes, with no writes running', async () => {
    const bench = source.startPgbench({ clients: 2, seconds: 1 });
    await bench.done;
    await source.query("CREATE TABLE after_full AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 5000) g");
    await source.query("UPDATE pgbench_accounts SET filler = 'matrix' WHERE aid % 1009 = 0");
    await source.query('DELETE FROM pgbench_accounts WHERE aid % 997 = 0 AND abalance = 0');
    digestBeforeDelta = await source.tableDigest();
    expect(Object.keys(digestBeforeDelta)).toContain('public.after_full');

    deltaId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--compress-algorithm', 'none']));
    const d = await backup(deltaId);
    const f = await backup(fullId);
    expect(d.status).toBe('OK');
    expect(d.backup_mode).toBe('DELTA');
    expect(d.parent_backup_id).toBe(fullId);
    expect(d.stream).toBe(true);
    // Stored bytes without the streamed WAL: the DELTA stores only the changed pages and files.
    // pgbench at scale 1 touches most pages of pgbench_accounts in a few seconds, but the
    // catalogs of template0, template1 and postgres (over half of the FULL) stay unchanged.
    const dataStored = (b: ShowBackup) => Number(b.stored_bytes) - Number(b.wal_bytes);
    storedBytes.set(major, `stored without WAL: FULL ${dataStored(f)} B, DELTA ${dataStored(d)} B`);
    expect(dataStored(f)).toBeGreaterThan(0);
    expect(dataStored(d)).toBeGreaterThan(0);
    expect(dataStored(d)).toBeLessThan(dataStored(f) * 0.6);
    const one = JSON.parse((await fx.ok(['show', '-i', deltaId, '--format', 'json'])).stdout) as { backups: { restore_chain: unknown }[] }[];
    expect(one[0]!.backups[0]!.restore_chain).toEqual([deltaId, fullId]);
  });

  it('validates both backups', async () => {
    const v = await fx.ok(['validate', '--instance', 'main']);
    expect(v.stdout).toContain(`backup ${fullId} is valid`);
    expect(v.stdout).toContain(`backup ${deltaId} is valid`);
  });

  it('restores the DELTA chain to a server with the invariant, the digest, amcheck and checksums', async () => {
    const dest = join(await makeTempDir(`matrix${major}`), 'data');
    await fx.ok(['restore', '--instance', 'main', '-D', dest, '-i', deltaId, '-j', '2']);
    const c = await TestCluster.adopt(dest, { major, name: `matrix${major}-restored` });
    restored.push(c);
    const inv = await c.pgbenchInvariant();
    expect(inv.ok, invariantText(inv)).toBe(true);
    expect(inv.delta).not.toBe(0n);
    expect(await c.tableDigest()).toEqual(digestBeforeDelta);
    await c.amcheck();
    await c.stop();
    await c.checksumsCheck();
  });
});
