// A database moved to another tablespace and back between a FULL backup and its incrementals.
// ALTER DATABASE ... SET TABLESPACE copies the files outside WAL (one CREATE_FILE_COPY record), so
// when the database comes back its files have the very paths they had in the parent, with pages
// changed while it was away, logged against the other tablespace. DELTA sees the changed pages by
// their LSN; PAGE and PTRACK (WAL summaries) have to read the copy record as "every file of the
// database", or they would take the moved-back files for unchanged. Each restores the table as the
// source has it, its index passing amcheck.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, postgresRunner } from './pgkeep-fixture.js';

describe('a database moved to another tablespace and back, on PostgreSQL 17', () => {
  let repo: string;
  let source: TestCluster;
  const restored: TestCluster[] = [];
  const { ok } = postgresRunner(() => repo);

  beforeAll(async () => {
    repo = await archiveRepoDir('dbmoved-repo');
    source = await createArchivingInstance(ok, repo, { major: 17, name: 'dbmoved', settings: { summarize_wal: 'on' } });
  });

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await source?.destroy();
  });

  it('DELTA, PAGE and PTRACK each restore the moved-back database as the source has it', async () => {
    const location = await source.createTablespace('away');
    await source.createDatabase('dbm');
    const inDb = (sql: string) => source.query(sql, [], 'dbm');
    await inDb('CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g');
    await inDb('CREATE INDEX t_id ON t (id)');
    const full = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    await source.query('ALTER DATABASE dbm SET TABLESPACE away');
    await inDb("UPDATE t SET v = 'away ' || id WHERE id % 50 = 0");
    await source.query('ALTER DATABASE dbm SET TABLESPACE pg_default');
    await inDb("UPDATE t SET v = 'back ' || id WHERE id % 77 = 0");
    await source.query('CHECKPOINT');
    const expected = await source.tableDigest('dbm');

    for (const mode of ['DELTA', 'PAGE', 'PTRACK']) {
      const id = backupIdOf(await ok(['backup', '--instance', 'main', '-b', mode, '--stream', '-j', '2', '--parent', full]));
      const dest = join(await makeTempDir(`dbmoved-${mode}`, { owner: 'postgres' }), 'data');
      const tablespace = join(await makeTempDir(`dbmoved-ts-${mode}`, { owner: 'postgres' }), 'ts');
      await ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2', '--archive-mode', 'off', '-T', `${location}=${tablespace}`]);
      const c = await TestCluster.adopt(dest, { major: 17, name: `dbmoved-r-${mode}` });
      restored.push(c);
      expect(await c.tableDigest('dbm'), mode).toEqual(expected);
      await c.amcheck('dbm');
      await c.stop();
    }
  });
});
