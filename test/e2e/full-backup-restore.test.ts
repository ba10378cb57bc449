// FULL backup of a running cluster and restore, on every major under test: the restored server
// starts, recovers, and holds the data (pgbench's invariant, identical table contents, amcheck,
// data checksums), including tablespaces, remapped or not, and pg_wal moved to another directory (-X).
import { readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, invariantText, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

const MAJORS: PgMajor[] = [15, 17];

describe.each(MAJORS)('FULL backup and restore on PostgreSQL %i', (major) => {
  let source: TestCluster;
  let fx: RepoFixture;
  const restored: TestCluster[] = [];

  beforeAll(async () => {
    source = await TestCluster.create({ major, name: `full${major}` });
    await source.pgbenchInit(4);
    fx = await newRepo(source);
  });

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await source?.destroy();
  });

  async function restoreAndStart(args: string[]): Promise<TestCluster> {
    const dest = join(await makeTempDir('restore'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-D', dest, '-j', '2', ...args]);
    // Run as root, the restore leaves every file to the source's owner, so postgres can start it
    // (checked before adopt(), which would chown the tree itself).
    const sourceUid = (await stat(join(source.pgdata, 'PG_VERSION'))).uid;
    for (const p of ['.', 'PG_VERSION', 'global/pg_control', 'base', 'pg_wal']) expect((await stat(join(dest, p))).uid, p).toBe(sourceUid);
    const c = await TestCluster.adopt(dest, { major, name: `restored${major}` });
    restored.push(c);
    return c;
  }

  it('backs up while pgbench writes, and the restored server passes the invariant, amcheck and checksums', async () => {
    const bench = source.startPgbench({ clients: 2 });
    let id: string;
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const r = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'zstd', '--note', 'under load']);
      id = backupIdOf(r);
    } finally {
      await bench.stop();
    }
    const [inst] = await fx.showJson();
    const b = inst!.backups.find((x) => x.id === id)!;
    expect(b.status).toBe('OK');
    expect(b.backup_mode).toBe('FULL');
    expect(b.stream).toBe(true);
    expect(b.compress_alg).toBe('zstd');
    expect(b.note).toBe('under load');
    expect(Number(b.wal_bytes)).toBeGreaterThan(0);
    expect(Number(b.stored_bytes)).toBeLessThan(Number(b.data_bytes));

    const c = await restoreAndStart(['-i', id]);
    const inv = await c.pgbenchInvariant();
    expect(inv.ok, invariantText(inv)).toBe(true);
    expect(inv.delta).not.toBe(0n); // pgbench did write before the backup's end
    await c.amcheck();
    await c.stop();
    await c.checksumsCheck();
  });

  it('restores exactly the table contents of a backup taken without concurrent writes', async () => {
    await source.query('CREATE TABLE quiet AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 20000) g');
    await source.query("UPDATE pgbench_accounts SET filler = 'changed' WHERE aid % 97 = 0");
    const before = await source.tableDigest();
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--compress-algorithm', 'lz4']));
    const c = await restoreAndStart(['-i', id]);
    expect(await c.tableDigest()).toEqual(before);
    expect(Object.keys(before)).toContain('public.quiet');
    await c.stop();
  });

  it('carries a tablespace, restored in place or remapped with -T', async () => {
    const location = await source.createTablespace(`ts${major}`);
    await source.query(`CREATE TABLE in_ts TABLESPACE ts${major} AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 5000) g`);
    const digest = (await source.query<{ d: string }>("SELECT md5(string_agg(id::text || pad, ',' ORDER BY id)) AS d FROM in_ts"))[0]!.d;
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--compress-algorithm', 'gzip']));

    // Remapped: the link points to the new place and tablespace_map names it.
    const newLocation = join(await makeTempDir('ts-new', { owner: 'postgres' }), 'moved');
    const c = await restoreAndStart(['-i', id, '-T', `${location}=${newLocation}`]);
    const links = await readdir(join(c.pgdata, 'pg_tblspc'));
    expect(links).toHaveLength(1);
    expect(await readlink(join(c.pgdata, 'pg_tblspc', links[0]!))).toBe(newLocation);
    const got = (await c.query<{ d: string }>("SELECT md5(string_agg(id::text || pad, ',' ORDER BY id)) AS d FROM in_ts"))[0]!.d;
    expect(got).toBe(digest);
    expect((await c.query<{ l: string }>(`SELECT pg_tablespace_location(oid) AS l FROM pg_tablespace WHERE spcname = 'ts${major}'`))[0]!.l).toBe(newLocation);
    await c.destroy();

    // In place: refused while the original location is in use, accepted once it is empty.
    const dest = join(await makeTempDir('restore'), 'data');
    const refused = await fx.run(['restore', '--instance', 'main', '-D', dest, '-i', id]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/tablespace target .* is not empty/);
    await expect(readdir(dest)).rejects.toThrow(); // nothing was written
    const unused = `${location}-unused`;
    const c2 = await restoreAndStart(['-i', id, '-T', `${location}=${unused}`]);
    expect((await c2.query<{ n: string }>('SELECT count(*) AS n FROM in_ts'))[0]!.n).toBe('5000');
    await c2.destroy();
    await source.query('DROP TABLE in_ts');
    await source.query(`DROP TABLESPACE ts${major}`);
  });

  it('puts the WAL in --waldir with pg_wal a link to it; refuses a WAL directory that is not empty or lies inside -D', async () => {
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    const rows = (await source.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_accounts'))[0]!.n;

    const used = await makeTempDir('waldir-used');
    await writeFile(join(used, 'something'), 'x');
    const notEmptyDest = join(await makeTempDir('restore'), 'data');
    const notEmpty = await fx.run(['restore', '--instance', 'main', '-D', notEmptyDest, '-i', id, '-X', used]);
    expect(notEmpty.code).toBe(2);
    expect(notEmpty.stderr.split('\n').filter((l) => l.startsWith('ERROR: '))).toEqual([`ERROR: WAL directory ${used} is not empty`]);
    await expect(readdir(notEmptyDest)).rejects.toThrow(); // nothing was written
    const insideDest = join(await makeTempDir('restore'), 'data');
    const inside = await fx.run(['restore', '--instance', 'main', '-D', insideDest, '-i', id, '-X', join(insideDest, 'wal')]);
    expect(inside.code).toBe(2);
    expect(inside.stderr).toContain(`ERROR: --waldir ${join(insideDest, 'wal')} lies inside the restore target ${insideDest}`);
    await expect(readdir(insideDest)).rejects.toThrow();

    // Promoted at the end of the backup: the new timeline's history file and WAL go through the link.
    const walDir = join(await makeTempDir('waldir'), 'wal');
    const c = await restoreAndStart(['-i', id, '-X', walDir, '--recovery-target', 'immediate']);
    expect(await readlink(join(c.pgdata, 'pg_wal'))).toBe(walDir);
    const st = await stat(walDir);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe((await stat(join(source.pgdata, 'PG_VERSION'))).uid);
    expect((await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    expect((await c.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_accounts'))[0]!.n).toBe(rows);
    const tli = Number((await c.query<{ t: number }>('SELECT timeline_id AS t FROM pg_control_checkpoint()'))[0]!.t);
    expect(await readdir(walDir)).toContain(`${tli.toString(16).toUpperCase().padStart(8, '0')}.history`);
    await c.stop();
  });

  it('restores with --recovery-target=immediate and promotes', async () => {
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    const c = await restoreAndStart(['-i', id, '--recovery-target', 'immediate']);
    const auto = await readFile(join(c.pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(auto).toContain("recovery_target = 'immediate'");
    expect((await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    expect(Number((await c.query<{ t: number }>('SELECT timeline_id AS t FROM pg_control_checkpoint()'))[0]!.t)).toBeGreaterThan(1);
    await c.stop();
  });
});
