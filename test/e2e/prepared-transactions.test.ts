// A cluster's server-side state across a backup and restore, as an operator meets it: prepared
// transactions (two-phase commit, pg_twophase and WAL) survive, still prepared, and can be
// committed or rolled back in the copy; replication slots do not come along (pg_replslot is kept
// empty, as pg_basebackup keeps it: a copy holding the source's slots would retain WAL for
// consumers that will never connect to it). One transaction is prepared before the FULL backup,
// another between it and a DELTA.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

describe.each([15, 17] as PgMajor[])('prepared transactions and slots on PostgreSQL %i', (major) => {
  let source: TestCluster;
  let fx: RepoFixture;
  const restored: TestCluster[] = [];

  beforeAll(async () => {
    source = await TestCluster.create({ major, name: `twophase${major}`, settings: { max_prepared_transactions: '5' } });
    fx = await newRepo(source);
  });

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await source?.destroy();
  });

  /** Inserts `rows` ids into t_2pc in a transaction prepared as `gid`, from a session that then ends. */
  const prepare = async (gid: string, from: number, rows: number) => {
    const s = new pg.Client({ ...source.connection, database: 'postgres' });
    await s.connect();
    try {
      await s.query('BEGIN');
      await s.query('INSERT INTO t_2pc SELECT g FROM generate_series($1::int, $2::int) g', [from, from + rows - 1]);
      await s.query(`PREPARE TRANSACTION '${gid}'`);
    } finally {
      await s.end();
    }
  };
  const prepared = async (c: TestCluster) => (await c.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts ORDER BY gid')).map((r) => r.gid);
  const count = async (c: TestCluster) => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM t_2pc'))[0]!.n);

  it('restores prepared transactions still prepared, and no replication slot', async () => {
    await source.query('CREATE TABLE t_2pc (id int PRIMARY KEY)');
    await source.query('INSERT INTO t_2pc SELECT g FROM generate_series(1, 100) g');
    await source.query("SELECT pg_create_physical_replication_slot('kept_by_source', true)");
    await prepare('before_full', 1001, 50);
    await source.query('CHECKPOINT'); // the first one's state goes to pg_twophase
    const full = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));
    await prepare('before_delta', 2001, 70);
    const delta = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--parent', full]));
    expect(await prepared(source)).toEqual(['before_delta', 'before_full']);

    const restore = async (id: string) => {
      const dest = join(await makeTempDir(`twophase-r-${id}`), 'data');
      await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2']);
      expect(await readdir(join(dest, 'pg_replslot')), `${id}: pg_replslot`).toEqual([]);
      const c = await TestCluster.adopt(dest, { major, name: `twophase-r${major}-${id}` });
      restored.push(c);
      expect(await c.query('SELECT slot_name FROM pg_replication_slots'), id).toEqual([]);
      return c;
    };

    const fromFull = await restore(full);
    expect(await prepared(fromFull)).toEqual(['before_full']);
    expect(await count(fromFull)).toBe(100);
    await fromFull.query("COMMIT PREPARED 'before_full'");
    expect(await count(fromFull)).toBe(150);
    await fromFull.stop();

    const fromDelta = await restore(delta);
    expect(await prepared(fromDelta)).toEqual(['before_delta', 'before_full']);
    await fromDelta.query("ROLLBACK PREPARED 'before_full'");
    await fromDelta.query("COMMIT PREPARED 'before_delta'");
    expect(await count(fromDelta)).toBe(170);
    await fromDelta.amcheck('postgres');
    await fromDelta.stop();

    // The source lets go of its own, so that its shutdown does not wait on them.
    await source.query("ROLLBACK PREPARED 'before_full'");
    await source.query("ROLLBACK PREPARED 'before_delta'");
  });
});
