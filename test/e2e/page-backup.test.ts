// PAGE backups read the archived WAL since the parent's start and copy only the pages it names.
// Taken right after a DELTA of the same parent, with no writes in between, a PAGE backup must
// restore to relation files identical byte for byte to the DELTA's (every file under base/,
// global/ and the tablespace, pg_control aside) while reading fewer pages: a page the map missed
// would restore as the parent's version and show up here. The workload covers the ways relation
// files change (see delta-byte-identical.test.ts, which holds DELTA itself to a FULL backup).
// A gap in the archive and a server without archiving must fail the backup, never degrade it.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { fileDigests } from '../helpers/file-digests.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, postgresRunner, type ShowBackup, type ShowInstance } from './pgkeep-fixture.js';


const count = async (c: TestCluster, table: string, db = 'postgres'): Promise<number> => Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`, [], db))[0]!.n);

describe.each([15, 17] as PgMajor[])('PAGE backups on PostgreSQL %i', (major) => {
  let repo: string;
  let source: TestCluster;
  let fullId: string;
  const others: TestCluster[] = [];
  const { pgkeep, ok, archived } = postgresRunner(() => repo);
  const backups = async (): Promise<ShowBackup[]> => (JSON.parse((await ok(['show', '--format', 'json'])).stdout) as ShowInstance[])[0]!.backups;

  beforeAll(async () => {
    repo = await archiveRepoDir('pagerepo');
    // No autovacuum: nothing may write between the DELTA and the PAGE backup.
    source = await createArchivingInstance(ok, repo, { major, name: `page${major}`, settings: { archive_timeout: 0, autovacuum: 'off', max_wal_size: '1GB' } });
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  it('restores the same files as DELTA after a varied workload, reading fewer pages', async () => {
    const q = (sql: string, db = 'postgres') => source.query(sql, [], db);
    const tsOld = await source.createTablespace('ts_page');
    await q('CREATE TABLE t_early (id int, note text)');
    await q("INSERT INTO t_early VALUES (1, 'before')");
    await q('CREATE TABLE t_upd AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 60000) g');
    await q("CREATE TABLE t_trunc AS SELECT g AS id, repeat('t', 200) AS pad FROM generate_series(1, 10000) g");
    await q('CREATE TABLE t_drop AS SELECT g AS id FROM generate_series(1, 30000) g');
    await q('CREATE TABLE t_vacfull AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 40000) g');
    await q("CREATE TABLE t_shrink AS SELECT g AS id, repeat('s', 100) AS pad FROM generate_series(1, 60000) g");
    await q('CREATE TABLE t_space TABLESPACE ts_page AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 20000) g');
    // Never touched after the FULL backup: DELTA reads it all, PAGE none of it.
    await q("CREATE TABLE t_cold AS SELECT g AS id, repeat('c', 200) AS pad FROM generate_series(1, 100000) g");
    await q('CREATE DATABASE db_drop');
    await q('CREATE TABLE gone AS SELECT g FROM generate_series(1, 1000) g', 'db_drop');
    await q('VACUUM ANALYZE');
    await q('CHECKPOINT');
    fullId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    // The workload. t_early's page is changed once, right after the parent started.
    await q("INSERT INTO t_early VALUES (2, 'after the FULL backup')");
    await q('UPDATE t_upd SET val = md5(val) WHERE id % 50 = 0');
    await q('DELETE FROM t_upd WHERE id % 77 = 0');
    await q('TRUNCATE t_trunc');
    await q("INSERT INTO t_trunc SELECT g, 'again' FROM generate_series(1, 100) g");
    await q('DROP TABLE t_drop');
    await q('CREATE TABLE t_new AS SELECT g AS id, g * 2 AS twice FROM generate_series(1, 20000) g');
    await q('DELETE FROM t_vacfull WHERE id % 3 = 0');
    await q('VACUUM FULL t_vacfull');
    await q('CREATE INDEX t_upd_val ON t_upd (val)');
    await q('UPDATE t_space SET val = upper(val) WHERE id % 100 = 0');
    await q('CREATE DATABASE db_new');
    await q('CREATE TABLE fresh AS SELECT g, md5(g::text) FROM generate_series(1, 5000) g', 'db_new');
    await q('CREATE DATABASE db_copy STRATEGY FILE_COPY');
    await q('CREATE TABLE copied AS SELECT g FROM generate_series(1, 3000) g', 'db_copy');
    await q('DROP DATABASE db_drop');
    await q('DELETE FROM t_shrink WHERE id > 6000');
    await q('VACUUM t_shrink'); // truncates the emptied tail: the relation shrinks
    await q('CHECKPOINT');
    const shrinkPath = (await q("SELECT pg_relation_filepath('t_shrink') AS p"))[0].p as string;
    const shrinkBlocks = Number((await q("SELECT pg_relation_size('t_shrink') / 8192 AS n"))[0].n);

    // No writes between these two. The PAGE backup leaves its own WAL to the archive too: its
    // restore replays it through archive-get.
    const deltaId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'DELTA', '--parent', fullId, '--stream', '-j', '2']));
    const page = await ok(['backup', '--instance', 'main', '-b', 'PAGE', '--parent', fullId, '-j', '2']);
    const pageId = backupIdOf(page);
    expect(page.stderr).toMatch(/PAGE: \d+ WAL records/);

    const all = await backups();
    const d = all.find((b) => b.id === deltaId)!;
    const p = all.find((b) => b.id === pageId)!;
    expect(p.backup_mode).toBe('PAGE');
    expect(p.status).toBe('OK');
    expect(p.parent_backup_id).toBe(fullId);
    expect(p.change_source).toBe('wal');
    expect(p.stream).toBe(false);
    expect(d.change_source).toBe('lsn-scan');
    const pagesRead = (b: ShowBackup) => (b.metrics as Record<string, number>).pagesRead!;
    // t_cold alone is over 2800 pages that DELTA reads and PAGE does not.
    expect(pagesRead(p)).toBeLessThan(pagesRead(d) - 2800);

    const restore = async (id: string, tag: string) => {
      const dest = join(await makeTempDir(`page-${tag}`, { owner: 'postgres' }), 'data');
      const ts = join(await makeTempDir(`page-${tag}-ts`, { owner: 'postgres' }), 'ts');
      await ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '--archive-mode', 'off', '-T', `${tsOld}=${ts}`, '-j', '2']);
      return dest;
    };
    const destDelta = await restore(deltaId, 'd');
    const destPage = await restore(pageId, 'p');
    const digests = async (root: string) => new Map([...(await fileDigests(root, 'base')), ...(await fileDigests(root, 'global')), ...(await fileDigests(root, 'pg_tblspc'))]);
    const a = await digests(destDelta);
    const b = await digests(destPage);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()].filter((k) => a.get(k) !== b.get(k))).toEqual([]);
    // The workload's shapes are really there.
    expect([...b.keys()].some((k) => k.startsWith('pg_tblspc/'))).toBe(true);
    expect(Number(b.get(shrinkPath)!.split(':')[0])).toBe(shrinkBlocks * 8192);

    const restored = await TestCluster.adopt(destPage, { major, name: `page-restored${major}` });
    others.push(restored);
    expect(await count(restored, 't_early')).toBe(2);
    expect(await count(restored, 't_upd')).toBe(60000 - Math.floor(60000 / 77));
    expect(await count(restored, 't_trunc')).toBe(100);
    expect(await count(restored, 't_vacfull')).toBe(40000 - Math.floor(40000 / 3));
    expect(await count(restored, 't_shrink')).toBe(6000);
    expect(await count(restored, 't_new')).toBe(20000);
    expect(await count(restored, 't_space WHERE val = upper(val) AND id % 100 = 0')).toBe(200);
    expect(await count(restored, 'fresh', 'db_new')).toBe(5000);
    expect(await count(restored, 'copied', 'db_copy')).toBe(3000);
    expect(await restored.query("SELECT 1 FROM pg_class WHERE relname = 't_drop'")).toEqual([]);
    expect(await restored.query("SELECT 1 FROM pg_database WHERE datname = 'db_drop'")).toEqual([]);
    await restored.amcheck('postgres');
    await restored.stop();
  });

  it('fails naming the segment when the archive has a gap since the parent, and records the backup ERROR', async () => {
    const full = (await backups()).find((b) => b.id === fullId)!;
    // The segment after the one holding the parent's start: the workload wrote well past it.
    const [row] = await source.query<{ f: string }>("SELECT pg_walfile_name($1::pg_lsn + (SELECT setting::numeric FROM pg_settings WHERE name = 'wal_segment_size')) AS f", [full.start_lsn]);
    const missing = row!.f;
    const before = await archived();
    expect(before).toContain(missing);
    expect(before.some((n) => n.length === 24 && n > missing)).toBe(true);
    await rm(join(repo, 'instances', 'main', 'wal', missing));

    const started = Date.now();
    const r = await pgkeep(['backup', '--instance', 'main', '-b', 'PAGE', '--parent', fullId, '--stream', '--archive-timeout', '120']);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`ERROR: WAL segment ${missing} is missing`));
    // A gap is recognised as one (later segments are archived), not waited out.
    expect(Date.now() - started).toBeLessThan(60_000);
    const failed = (await backups()).filter((b) => b.backup_mode === 'PAGE' && b.status === 'ERROR');
    expect(failed).toHaveLength(1);
    expect(String(failed[0]!.error)).toContain(missing);
  });

  it('fails with a one-line error when the server does not archive', async () => {
    // The last test: the source stays without archiving.
    await source.query('ALTER SYSTEM SET archive_mode = off');
    await source.restart();
    const r = await pgkeep(['backup', '--instance', 'main', '-b', 'PAGE', '--parent', fullId, '--stream']);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('INFO: '));
    expect(lines.filter((l) => l.startsWith('ERROR: '))).toEqual(['ERROR: a PAGE backup reads the archived WAL since its parent, but archive_mode is off on the server']);
    expect(lines.filter((l) => !l.startsWith('ERROR: ') && !l.startsWith('HINT: '))).toEqual([]);
  });
});
