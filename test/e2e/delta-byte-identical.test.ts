// DELTA must never miss a page: with no writes between them, a DELTA taken after a varied
// workload and a FULL backup taken right after it restore to relation files that are identical
// byte for byte (every file under base/ and global/, pg_control aside). The workload covers the
// ways relation files change: UPDATE/DELETE, TRUNCATE, DROP/CREATE TABLE, VACUUM FULL, CREATE
// INDEX, CREATE/DROP DATABASE, a relation that shrinks (VACUUM truncation), and a table that grows
// past its first 1 GB segment (fillfactor 10 makes ~131k rows fill a segment quickly).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { fileDigests } from '../helpers/file-digests.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';


const BIG_ROWS_BEFORE = 120_000; // ~940 MB at one row per page
const BIG_ROWS_AFTER = 20_000; // pushes the table past 131072 pages: base/<db>/<rel>.1 appears

describe.each([15, 17] as PgMajor[])('DELTA restores byte-identical relation files on PostgreSQL %i', (major) => {
  let source: TestCluster;
  let fx: RepoFixture;
  const others: TestCluster[] = [];

  beforeAll(async () => {
    // No autovacuum: nothing may write between the DELTA and the FULL backup.
    source = await TestCluster.create({ major, name: `ident${major}`, settings: { autovacuum: 'off', shared_buffers: '128MB', max_wal_size: '4GB' } });
    fx = await newRepo(source);
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  it('after updates, deletes, truncation, drops, new tables and databases, VACUUM FULL, a shrink and a new segment', async () => {
    const q = (sql: string, db = 'postgres') => source.query(sql, [], db);
    // Changed once, right after the FULL backup, and never touched again: its page keeps an LSN
    // just past the parent's start, which is what a DELTA must not miss.
    await q('CREATE TABLE t_early (id int, note text)');
    await q("INSERT INTO t_early VALUES (1, 'before')");
    await q('CREATE TABLE t_upd AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 100000) g');
    await q("CREATE TABLE t_trunc AS SELECT g AS id, repeat('t', 200) AS pad FROM generate_series(1, 20000) g");
    await q('CREATE TABLE t_drop AS SELECT g AS id FROM generate_series(1, 50000) g');
    await q('CREATE TABLE t_vacfull AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 60000) g');
    await q("CREATE TABLE t_shrink AS SELECT g AS id, repeat('s', 100) AS pad FROM generate_series(1, 200000) g");
    await q('CREATE TABLE big (id int, pad text) WITH (fillfactor = 10)');
    await q('ALTER TABLE big ALTER pad SET STORAGE PLAIN');
    await q(`INSERT INTO big SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, ${BIG_ROWS_BEFORE}) g`);
    await q('CREATE DATABASE db_drop');
    await q('CREATE TABLE gone AS SELECT g FROM generate_series(1, 1000) g', 'db_drop');
    await q('VACUUM ANALYZE');
    await q('CHECKPOINT');
    // Uncompressed (not the zstd default), so that the stored sizes compared below are the pages'.
    const full1 = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'none']));

    // The workload.
    await q("INSERT INTO t_early VALUES (2, 'after the FULL backup')");
    await q('UPDATE t_upd SET val = md5(val) WHERE id % 50 = 0');
    await q('DELETE FROM t_upd WHERE id % 77 = 0');
    await q('TRUNCATE t_trunc');
    await q("INSERT INTO t_trunc SELECT g, 'again' FROM generate_series(1, 100) g");
    await q('DROP TABLE t_drop');
    await q('CREATE TABLE t_new AS SELECT g AS id, g * 2 AS twice FROM generate_series(1, 30000) g');
    await q('DELETE FROM t_vacfull WHERE id % 3 = 0');
    await q('VACUUM FULL t_vacfull');
    await q('CREATE INDEX t_upd_val ON t_upd (val)');
    await q('CREATE DATABASE db_new');
    await q('CREATE TABLE fresh AS SELECT g, md5(g::text) FROM generate_series(1, 5000) g', 'db_new');
    await q('DROP DATABASE db_drop');
    await q('DELETE FROM t_shrink WHERE id > 20000');
    await q('VACUUM t_shrink'); // truncates the emptied tail: the relation shrinks
    await q(`INSERT INTO big SELECT g, repeat(md5(g::text), 16) FROM generate_series(${BIG_ROWS_BEFORE + 1}, ${BIG_ROWS_BEFORE + BIG_ROWS_AFTER}) g`);
    await q('CHECKPOINT');
    const bigFile = (await q("SELECT pg_relation_filepath('big') AS p"))[0].p as string;
    const shrinkBlocks = Number((await q("SELECT pg_relation_size('t_shrink') / 8192 AS n"))[0].n);

    const delta = await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--compress-algorithm', 'none']);
    const deltaId = backupIdOf(delta);
    const full2 = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'none']));

    const [inst] = await fx.showJson();
    const d = inst!.backups.find((b) => b.id === deltaId)!;
    const f2 = inst!.backups.find((b) => b.id === full2)!;
    expect(d.backup_mode).toBe('DELTA');
    expect(d.parent_backup_id).toBe(full1);
    // The DELTA stores far less than a FULL: the big table's old segment is mostly unchanged.
    expect(Number(d.stored_bytes)).toBeLessThan(Number(f2.stored_bytes) / 2);

    const destDelta = join(await makeTempDir('ident-d'), 'data');
    const destFull = join(await makeTempDir('ident-f'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', deltaId, '-D', destDelta, '-j', '2']);
    await fx.ok(['restore', '--instance', 'main', '-i', full2, '-D', destFull, '-j', '2']);

    const a = new Map([...(await fileDigests(destDelta, 'base')), ...(await fileDigests(destDelta, 'global'))]);
    const b = new Map([...(await fileDigests(destFull, 'base')), ...(await fileDigests(destFull, 'global'))]);
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    const differing = [...a.keys()].filter((k) => a.get(k) !== b.get(k));
    expect(differing).toEqual([]);
    // The workload's shapes are really there.
    expect(a.has(`${bigFile}.1`)).toBe(true);
    expect(Number(a.get(`${bigFile}.1`)!.split(':')[0])).toBeGreaterThan(0);
    const shrinkPath = (await q("SELECT pg_relation_filepath('t_shrink') AS p"))[0].p as string;
    expect(Number(a.get(shrinkPath)!.split(':')[0])).toBe(shrinkBlocks * 8192);

    // And the chain restore starts and holds the data.
    const restored = await TestCluster.adopt(destDelta, { major, name: `ident-restored${major}` });
    others.push(restored);
    expect((await restored.query<{ n: string }>('SELECT count(*) AS n FROM big'))[0]!.n).toBe(String(BIG_ROWS_BEFORE + BIG_ROWS_AFTER));
    expect((await restored.query<{ n: string }>('SELECT count(*) AS n FROM fresh', [], 'db_new'))[0]!.n).toBe('5000');
    expect((await restored.query<{ n: string }>('SELECT count(*) AS n FROM t_early'))[0]!.n).toBe('2');
    expect(await restored.query("SELECT 1 FROM pg_database WHERE datname = 'db_drop'")).toEqual([]);
    await restored.amcheck();
  });
});
