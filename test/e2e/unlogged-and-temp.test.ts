// Unlogged and temporary tables, as pg_basebackup treats them: a backup leaves out every fork of
// an unlogged relation but its init fork (the server resets the relation from it at the end of
// recovery) and every temporary relation (it belongs to one session of the source). A session
// holds a temporary table with an index while FULL, DELTA and (on 17) PTRACK backups run; between
// them the unlogged table grows, a new one is made, and another is turned logged. Restored, before
// it starts, each backup has the init forks and neither the unlogged main forks nor a temporary
// relation; started, the unlogged tables are empty and take rows through their indexes, the table
// turned logged holds its rows, and the permanent tables match the source.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

describe.each([15, 17] as PgMajor[])('unlogged and temporary tables on PostgreSQL %i', (major) => {
  let source: TestCluster;
  let fx: RepoFixture;
  const restored: TestCluster[] = [];

  beforeAll(async () => {
    source = await TestCluster.create({ major, name: `unl${major}`, settings: major >= 17 ? { summarize_wal: 'on' } : {} });
    fx = await newRepo(source);
  });

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await source?.destroy();
  });

  it('keeps only the init forks of unlogged relations and no temporary relation; restored, unlogged tables are empty and usable', async () => {
    const q = (sql: string) => source.query(sql);
    const filePath = async (rel: string) => (await source.query<{ p: string }>('SELECT pg_relation_filepath($1) AS p', [rel]))[0]!.p;
    await q('CREATE UNLOGGED TABLE u_keep (id int PRIMARY KEY, v text)');
    await q('INSERT INTO u_keep SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
    await q('CREATE UNLOGGED TABLE u_to_logged (id int PRIMARY KEY, v text)');
    await q("INSERT INTO u_to_logged SELECT g, 'x' FROM generate_series(1, 5000) g");
    await q('CREATE TABLE p_rows AS SELECT g AS id FROM generate_series(1, 10000) g');
    const unlogged = [await filePath('u_keep'), await filePath('u_keep_pkey')];
    for (const p of unlogged) {
      expect(existsSync(join(source.pgdata, p)), p).toBe(true);
      expect(existsSync(join(source.pgdata, `${p}_init`)), `${p}_init`).toBe(true);
    }

    // A session of the source holds a temporary table and its index through the backups.
    const session = new pg.Client({ ...source.connection, database: 'postgres' });
    await session.connect();
    try {
      await session.query("CREATE TEMP TABLE tmp_rows AS SELECT g AS id, repeat('t', 100) AS pad FROM generate_series(1, 20000) g");
      await session.query('CREATE INDEX tmp_rows_id ON tmp_rows (id)');
      const temporary = [
        ((await session.query<{ p: string }>("SELECT pg_relation_filepath('tmp_rows') AS p")).rows[0]!.p),
        ((await session.query<{ p: string }>("SELECT pg_relation_filepath('tmp_rows_id') AS p")).rows[0]!.p),
      ];
      for (const p of temporary) expect(existsSync(join(source.pgdata, p)), p).toBe(true);
      const isTemporary = (name: string) => /^t\d+_\d+/.test(name);

      const full = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));
      const fullDigest = await source.tableDigest();
      await q("INSERT INTO u_keep SELECT g, 'later' FROM generate_series(20001, 30000) g");
      await q('CREATE UNLOGGED TABLE u_new AS SELECT g AS id FROM generate_series(1, 3000) g');
      await q('ALTER TABLE u_to_logged SET LOGGED');
      await q('DELETE FROM p_rows WHERE id % 3 = 0');
      await session.query("INSERT INTO tmp_rows SELECT g, 'more' FROM generate_series(20001, 30000) g");
      await q('CHECKPOINT');
      const laterDigest = await source.tableDigest();
      expect(laterDigest['public.u_to_logged']).toMatch(/^5000:/);
      const delta = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--parent', full]));
      const ptrack = major >= 17 ? backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--stream', '-j', '2', '--parent', full])) : undefined;

      for (const [id, expected] of [[full, fullDigest], [delta, laterDigest], ...(ptrack ? [[ptrack, laterDigest]] : [])] as [string, Record<string, string>][]) {
        const dest = join(await makeTempDir(`unl-r-${id}`), 'data');
        await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2']);
        for (const p of unlogged) {
          expect(existsSync(join(dest, `${p}_init`)), `${id}: ${p}_init`).toBe(true);
          expect(existsSync(join(dest, p)), `${id}: ${p}`).toBe(false);
        }
        for (const p of temporary) expect((await readdir(join(dest, dirname(p)))).filter(isTemporary), `${id}: temporary relations`).toEqual([]);

        const c = await TestCluster.adopt(dest, { major, name: `unl-r${major}-${id}` });
        restored.push(c);
        expect(await c.tableDigest(), id).toEqual(expected);
        expect((await c.query<{ n: string }>('SELECT count(*) AS n FROM u_keep'))[0]!.n, id).toBe('0');
        await c.query("INSERT INTO u_keep VALUES (7, 'after the restore')");
        expect((await c.query<{ v: string }>('SELECT v FROM u_keep WHERE id = 7'))[0]!.v).toBe('after the restore');
        if (id !== full) expect((await c.query<{ n: string }>('SELECT count(*) AS n FROM u_new'))[0]!.n, id).toBe('0');
        else expect((await c.query<{ n: string }>('SELECT count(*) AS n FROM u_to_logged'))[0]!.n, id).toBe('0');
        await c.amcheck('postgres');
        await c.stop();
      }
    } finally {
      await session.end();
    }
  });
});
