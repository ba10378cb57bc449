// The PostgreSQL 13-18 matrix for the WAL-based incremental modes (docs/versions.md; the FULL and
// DELTA matrix is version-matrix.test.ts). On every major under test: a server that archives
// through pgkeep archive-push (PAGE reads the archived WAL since its parent), autovacuum off
// (nothing may write between the increments), summarize_wal = on on 17+ (PTRACK's wal-summary
// source). A FULL backup, writes of every kind (update, insert, delete, a new table, a TRUNCATE,
// a DROP TABLE, COPY bulk loads, which leave zero pages on disk from 16), a CHECKPOINT, then with no writes in between DELTA, PAGE and, on 17+, PTRACK,
// all with the FULL as parent. The PAGE (and PTRACK) restore must hold relation files identical
// byte for byte to the DELTA restore's; the PAGE restore starts and holds the table digest taken
// before the increments and passes amcheck. Only what is compared is restored, only PAGE started.
// Like page-backup.test.ts, every pgkeep command runs as postgres with a postgres-owned repository
// (the archive_command writes to it as postgres), and restores use --archive-mode off.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, majorsUnderTest, type PgMajor } from '../helpers/cluster.js';
import { relationDigests, zeroPageCount } from '../helpers/file-digests.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, type ShowBackup, type ShowInstance, postgresRunner } from './pgkeep-fixture.js';

const MAJORS = majorsUnderTest();
const durations = new Map<PgMajor, string>();

afterAll(() => {
  const lines = [...durations].map(([major, text]) => `  PostgreSQL ${major}: ${text}`);
  if (lines.length > 0) console.log(`incremental version matrix, per major:\n${lines.join('\n')}`);
});

const pagesRead = (b: ShowBackup): number => (b.metrics as Record<string, number>).pagesRead!;

describe.each(MAJORS)('PAGE (and PTRACK on 17+) against DELTA on PostgreSQL %i', (major) => {
  const withPtrack = major >= 17;
  let repo: string;
  let source: TestCluster;
  let started: number;
  const timings: string[] = [];
  const others: TestCluster[] = [];

  const { ok } = postgresRunner(() => repo);
  const lap = (what: string, since: number) => timings.push(`${what} ${((Date.now() - since) / 1000).toFixed(1)} s`);

  beforeAll(async () => {
    started = Date.now();
    repo = await archiveRepoDir(`imatrixrepo${major}`);
    source = await createArchivingInstance(ok, repo, {
      major,
      name: `imatrix${major}`,
      settings: { archive_timeout: 0, autovacuum: 'off', ...(withPtrack ? { summarize_wal: 'on' } : {}) },
    });
    await source.pgbenchInit(1);
    lap('setup', started);
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
    durations.set(major, `${((Date.now() - started) / 1000).toFixed(1)} s (${timings.join(', ')})`);
  });

  it(`restores PAGE${withPtrack ? ' and PTRACK' : ''} to the same relation files as DELTA; the PAGE restore starts with the data`, async () => {
    const q = (sql: string) => source.query(sql);
    const [settings] = await source.query<{ v: string; a: string; s: string | null }>(
      "SELECT current_setting('server_version_num') AS v, current_setting('archive_mode') AS a, current_setting('summarize_wal', true) AS s",
    );
    expect(Math.floor(Number(settings!.v) / 10000)).toBe(major);
    expect(settings!.a).toBe('on');
    if (withPtrack) expect(settings!.s).toBe('on');

    await q("CREATE TABLE t_trunc AS SELECT g AS id, repeat('t', 200) AS pad FROM generate_series(1, 5000) g");
    await q('CREATE TABLE t_drop AS SELECT g AS id FROM generate_series(1, 10000) g');
    // Bulk loads: from PostgreSQL 16, COPY extends by several pages and leaves zero pages on disk.
    await q('CREATE TABLE t_loaded (id int)');
    await q("COPY t_loaded FROM PROGRAM 'seq 1 100000'");
    await q('VACUUM ANALYZE');
    await q('CHECKPOINT');
    let t = Date.now();
    const fullId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));
    lap('FULL', t);

    // The writes.
    await q("UPDATE pgbench_accounts SET filler = 'incremental matrix' WHERE aid % 101 = 0");
    await q('UPDATE pgbench_branches SET bbalance = bbalance + 7');
    await q('DELETE FROM pgbench_accounts WHERE aid % 997 = 0');
    await q("INSERT INTO pgbench_history SELECT 1, 1, g, g, now(), 'mx' FROM generate_series(1, 2000) g");
    await q('CREATE TABLE t_new AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 20000) g');
    await q('TRUNCATE t_trunc');
    await q("INSERT INTO t_trunc SELECT g, 'again' FROM generate_series(1, 100) g");
    await q('DROP TABLE t_drop');
    await q("COPY t_loaded FROM PROGRAM 'seq 100001 150000'");
    await q('CREATE TABLE t_bulk (id int)');
    await q("COPY t_bulk FROM PROGRAM 'seq 1 100000'");
    await q('CHECKPOINT');
    if (major >= 16) {
      const bulkPath = (await source.query<{ p: string }>("SELECT pg_relation_filepath('t_bulk') AS p"))[0]!.p;
      expect(await zeroPageCount(join(source.pgdata, bulkPath))).toBeGreaterThan(0);
    }
    const digestBefore = await source.tableDigest();
    expect(Object.keys(digestBefore)).toContain('public.t_new');
    expect(Object.keys(digestBefore)).not.toContain('public.t_drop');

    // No writes from here on: the increments cover the same interval.
    t = Date.now();
    const deltaId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'DELTA', '--parent', fullId, '--stream', '-j', '2']));
    lap('DELTA', t);
    t = Date.now();
    const page = await ok(['backup', '--instance', 'main', '-b', 'PAGE', '--parent', fullId, '--stream', '-j', '2']);
    const pageId = backupIdOf(page);
    expect(page.stderr).toMatch(/PAGE: \d+ WAL records/);
    lap('PAGE', t);
    let ptrackId: string | undefined;
    if (withPtrack) {
      t = Date.now();
      ptrackId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', fullId, '--stream', '-j', '2']));
      lap('PTRACK', t);
    }

    const all = (JSON.parse((await ok(['show', '--format', 'json'])).stdout) as ShowInstance[])[0]!.backups;
    const of = (id: string) => {
      const b = all.find((x) => x.id === id);
      expect(b, `backup ${id} in show`).toBeDefined();
      return b!;
    };
    const d = of(deltaId);
    const p = of(pageId);
    expect([d.backup_mode, d.status, d.parent_backup_id, d.change_source]).toEqual(['DELTA', 'OK', fullId, 'lsn-scan']);
    expect([p.backup_mode, p.status, p.parent_backup_id, p.change_source, p.stream]).toEqual(['PAGE', 'OK', fullId, 'wal', true]);
    expect(String(p.server_version).split('.')[0]).toBe(String(major));
    // DELTA reads every page (template0, template1 included); PAGE only those the WAL names.
    expect(pagesRead(p)).toBeLessThan(pagesRead(d));
    const read = [`DELTA ${pagesRead(d)}`, `PAGE ${pagesRead(p)}`];
    if (ptrackId !== undefined) {
      const w = of(ptrackId);
      expect([w.backup_mode, w.status, w.parent_backup_id, w.change_source]).toEqual(['PTRACK', 'OK', fullId, 'wal-summary']);
      expect(pagesRead(w)).toBeLessThan(pagesRead(d));
      read.push(`PTRACK ${pagesRead(w)}`);
    }
    timings.push(`pages read: ${read.join(', ')}`);

    t = Date.now();
    const restore = async (id: string, tag: string) => {
      const dest = join(await makeTempDir(`imatrix${major}-${tag}`, { owner: 'postgres' }), 'data');
      await ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '--archive-mode', 'off', '-j', '2']);
      return dest;
    };
    const reference = await relationDigests(await restore(deltaId, 'd'));
    const destPage = await restore(pageId, 'p');
    const compared: [string, string][] = [['PAGE', destPage]];
    if (ptrackId !== undefined) compared.push(['PTRACK', await restore(ptrackId, 'w')]);
    for (const [mode, dest] of compared) {
      const digests = await relationDigests(dest);
      expect([...digests.keys()].sort(), mode).toEqual([...reference.keys()].sort());
      expect([...digests.keys()].filter((k) => digests.get(k) !== reference.get(k)), mode).toEqual([]);
    }
    lap('restores and comparison', t);

    t = Date.now();
    const restored = await TestCluster.adopt(destPage, { major, name: `imatrix${major}-page` });
    others.push(restored);
    expect(await restored.tableDigest()).toEqual(digestBefore);
    expect(await restored.query("SELECT 1 FROM pg_class WHERE relname = 't_drop'")).toEqual([]);
    await restored.amcheck('postgres');
    await restored.stop();
    lap('PAGE restore start and checks', t);
  });
});
