// PTRACK backups read only the pages the server says changed, and must never miss one. On
// PostgreSQL 17 (summarize_wal = on, no autovacuum so that nothing writes between backups): a
// FULL backup, a workload that changes relation files in every way (updates, deletes, TRUNCATE,
// DROP/CREATE TABLE, VACUUM FULL, CREATE INDEX, CREATE DATABASE by WAL and by file copy, DROP
// DATABASE, a shrink, a table growing into its second 1 GB segment, COPY bulk loads that leave
// zero pages in the parent and past it, an UPDATE clearing visibility-map bits that the WAL
// summaries do not name), then with no writes in
// between DELTA, PTRACK from WAL summaries and PTRACK from the ptrack extension, all three with
// the FULL as parent: their restores hold byte-identical files under base/ and global/, and the
// PTRACKs read far fewer pages than DELTA.
//
// There is no ptrack build here: test/fixtures-sql/ptrack/ is a test-only extension exposing the
// documented ptrack 2.x SQL API computed from the server's WAL summaries (with short bitmaps and
// extra bits past the end of files, as the contract allows). It is created in its own database
// (pgkeep uses ptrack only when the connected database has it) and in a non-public schema (pgkeep
// must call the extension's own schema).
//
// On a standby (17): the extension, created on the primary, answers there from the standby's own
// summaries; a PTRACK backup of the standby from it restores the same relation files as DELTA.
//
// Refusals: no change map at all (PostgreSQL 15, or 17 with summarize_wal off); a parent older
// than the WAL summaries; a parent older than ptrack_init_lsn(). Each leaves no usable backup.
import { copyFile, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, binDir } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { relationDigests, zeroPageCount } from '../helpers/file-digests.js';
import { parseLsn } from '../../src/core/lsn.js';
import { backupIdOf, connectionArgs, newRepo, restoreStandby, type RepoFixture, type ShowBackup } from './pgkeep-fixture.js';

const FIXTURE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures-sql', 'ptrack');
const FIXTURE_FILES = ['ptrack.control', 'ptrack--2.4.sql'];
const EXTENSION_DIR = join(binDir(17), '..', 'share', 'postgresql', 'extension');
const PTRACK_DB = 'tracked';
const PTRACK_SCHEMA = 'changes_kept_here';

const BIG_ROWS_BEFORE = 130_000; // one row per page: just under one 1 GB segment
const BIG_ROWS_AFTER = 3_000; // pushes the table into base/<db>/<rel>.1

async function installPtrackFixture(): Promise<void> {
  for (const name of FIXTURE_FILES) {
    // Copy then rename: a server reading the directory meanwhile sees the whole file or none.
    const tmp = join(EXTENSION_DIR, `.${name}.${process.pid}`);
    await copyFile(join(FIXTURE_DIR, name), tmp);
    await rename(tmp, join(EXTENSION_DIR, name));
  }
}

async function removePtrackFixture(): Promise<void> {
  for (const name of FIXTURE_FILES) await rm(join(EXTENSION_DIR, name), { force: true });
}

async function createPtrack(c: TestCluster, database: string): Promise<void> {
  await c.query(`CREATE SCHEMA ${PTRACK_SCHEMA}`, [], database);
  await c.query(`CREATE EXTENSION ptrack SCHEMA ${PTRACK_SCHEMA}`, [], database);
}



function backupOf(backups: ShowBackup[], id: string): ShowBackup {
  const b = backups.find((x) => x.id === id);
  if (!b) throw new Error(`backup ${id} not in show output`);
  return b;
}

function pagesRead(b: ShowBackup): number {
  return (b.metrics as Record<string, number>).pagesRead!;
}

/** Pages of the free-space and visibility-map forks under base/ and global/. */
async function mapForkPages(pgdata: string): Promise<number> {
  let pages = 0;
  for (const dir of ['base', 'global']) {
    for (const name of await readdir(join(pgdata, dir), { recursive: true })) {
      if (/_(fsm|vm)$/.test(name)) pages += (await stat(join(pgdata, dir, name))).size / 8192;
    }
  }
  return pages;
}

// The fixture goes into the npm build's extension directory for this file's run only.
beforeAll(installPtrackFixture);
afterAll(removePtrackFixture);

describe('PTRACK backups on PostgreSQL 17', () => {
  let source: TestCluster;
  let fx: RepoFixture;
  const others: TestCluster[] = [];

  beforeAll(async () => {
    source = await TestCluster.create({ major: 17, name: 'ptrack17', settings: { autovacuum: 'off', shared_buffers: '128MB', max_wal_size: '4GB' } });
    fx = await newRepo(source);
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  it('restores the same relation files as DELTA, from WAL summaries and from ptrack, reading only changed pages', async () => {
    const q = (sql: string, db = 'postgres') => source.query(sql, [], db);
    await q(`CREATE DATABASE ${PTRACK_DB}`);
    await createPtrack(source, PTRACK_DB);
    await q('CREATE TABLE t_cold AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 50000) g');
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
    // COPY extends by several pages at a time and leaves those it has not filled as zeros on disk.
    await q('CREATE TABLE t_loaded (id int)');
    await q("COPY t_loaded FROM PROGRAM 'seq 1 300000'");
    await q('CREATE TABLE in_tracked AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 20000) g', PTRACK_DB);
    // All-visible after the VACUUM below; one UPDATE after the workload's last VACUUM clears a
    // bit of its visibility map, which no WAL record names (see below).
    await q('CREATE TABLE t_vm AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 5000) g');
    await q('CREATE DATABASE db_drop');
    await q('CREATE TABLE gone AS SELECT g FROM generate_series(1, 1000) g', 'db_drop');
    for (const db of ['postgres', PTRACK_DB, 'db_drop']) await q('VACUUM ANALYZE', db);
    await q('CHECKPOINT');
    const loadedFile = (await q("SELECT pg_relation_filepath('t_loaded') AS p"))[0].p as string;
    expect(await zeroPageCount(join(source.pgdata, loadedFile))).toBeGreaterThan(0);
    const vmTable = (await q("SELECT pg_relation_filepath('t_vm') AS p, relfilenode::int AS node FROM pg_class WHERE relname = 't_vm'"))[0] as { p: string; node: number };
    const vmAtFull = await readFile(join(source.pgdata, `${vmTable.p}_vm`));
    const full = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    // The workload.
    await q("INSERT INTO t_early VALUES (2, 'after the FULL backup')");
    await q('UPDATE t_upd SET val = md5(val) WHERE id % 50 = 0');
    await q('DELETE FROM t_upd WHERE id % 77 = 0');
    await q('DELETE FROM t_cold WHERE id = 1'); // its first page only: a bitmap shorter than the file
    await q('TRUNCATE t_trunc');
    await q("INSERT INTO t_trunc SELECT g, 'again' FROM generate_series(1, 100) g");
    await q('DROP TABLE t_drop');
    await q('CREATE TABLE t_new AS SELECT g AS id, g * 2 AS twice FROM generate_series(1, 30000) g');
    await q('DELETE FROM t_vacfull WHERE id % 3 = 0');
    await q('VACUUM FULL t_vacfull');
    await q('CREATE INDEX t_upd_val ON t_upd (val)');
    await q('CREATE DATABASE db_new');
    await q('CREATE TABLE fresh AS SELECT g, md5(g::text) FROM generate_series(1, 5000) g', 'db_new');
    await q('CREATE DATABASE db_copied STRATEGY FILE_COPY');
    await q('DROP DATABASE db_drop');
    await q('DELETE FROM t_shrink WHERE id > 20000');
    await q('VACUUM t_shrink'); // truncates the emptied tail: the relation shrinks
    await q("UPDATE big SET pad = repeat('u', 512) WHERE id IN (7, 65000)"); // segment 0, in place
    await q(`INSERT INTO big SELECT g, repeat(md5(g::text), 16) FROM generate_series(${BIG_ROWS_BEFORE + 1}, ${BIG_ROWS_BEFORE + BIG_ROWS_AFTER}) g`);
    await q('UPDATE in_tracked SET val = upper(val) WHERE id % 100 = 0', PTRACK_DB);
    // Into the table again, through the free-space map (VACUUM recorded the zero pages the FULL
    // holds) and past its end into new zero pages that nothing in WAL names; and a new table
    // loaded the same way.
    await q("COPY t_loaded FROM PROGRAM 'seq 300001 400000'");
    await q('CREATE TABLE t_bulk (id int)');
    await q("COPY t_bulk FROM PROGRAM 'seq 1 200000'");
    for (const db of ['postgres', PTRACK_DB, 'db_new', 'db_copied']) await q('VACUUM', db);
    await q("UPDATE t_vm SET val = 'after' WHERE id = 1");
    await q('CHECKPOINT');
    // The UPDATE cleared all-visible bits in t_vm's visibility map, on disk now.
    expect((await readFile(join(source.pgdata, `${vmTable.p}_vm`))).equals(vmAtFull)).toBe(false);
    const bulkFile = (await q("SELECT pg_relation_filepath('t_bulk') AS p"))[0].p as string;
    for (const f of [loadedFile, bulkFile]) expect(await zeroPageCount(join(source.pgdata, f)), f).toBeGreaterThan(0);
    const bigFile = (await q("SELECT pg_relation_filepath('big') AS p"))[0].p as string;

    // No writes from here on: three increments over the same interval.
    const delta = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--parent', full, '--stream', '-j', '2']));
    const fromSummaries = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', full, '--stream', '-j', '2']));
    const fromPtrack = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', full, '--stream', '-j', '2', '-d', PTRACK_DB]));

    const [inst] = await fx.showJson();
    const d = backupOf(inst!.backups, delta);
    const ws = backupOf(inst!.backups, fromSummaries);
    const pt = backupOf(inst!.backups, fromPtrack);
    expect([d.backup_mode, ws.backup_mode, pt.backup_mode]).toEqual(['DELTA', 'PTRACK', 'PTRACK']);
    expect([d.status, ws.status, pt.status]).toEqual(['OK', 'OK', 'OK']);
    expect([ws.parent_backup_id, pt.parent_backup_id]).toEqual([full, full]);
    expect(d.change_source).toBe('lsn-scan');
    expect(ws.change_source).toBe('wal-summary');
    expect(pt.change_source).toBe('ptrack');
    // Yet the WAL summaries over the interval name only t_vm's main fork: a heap record does not
    // register the visibility map's page it clears a bit of. So a map fork cannot be taken from
    // the change map (PostgreSQL 17's own incremental backup takes it from there): PTRACK reads
    // it whole, and its restores below must hold the very map DELTA's holds.
    const vmForks = await q(`SELECT DISTINCT c.relforknumber AS fork FROM pg_available_wal_summaries() s, LATERAL pg_wal_summary_contents(s.tli, s.start_lsn, s.end_lsn) c
      WHERE s.end_lsn > '${backupOf(inst!.backups, full).start_lsn}'::pg_lsn AND s.start_lsn < '${ws.start_lsn}'::pg_lsn AND c.relfilenode = ${vmTable.node} ORDER BY 1`);
    expect(vmForks.map((r) => Number(r.fork))).toEqual([0]);
    console.log(`pages read: DELTA ${pagesRead(d)}, PTRACK (wal-summary) ${pagesRead(ws)}, PTRACK (ptrack) ${pagesRead(pt)}`);
    // The big table's first segment (~130k pages) is read by DELTA, not by PTRACK.
    expect(pagesRead(ws)).toBeLessThan(pagesRead(d) / 4);
    expect(pagesRead(pt)).toBeLessThan(pagesRead(d) / 4);
    // Free-space and visibility-map forks are not in the map's care: every incremental backup
    // reads them whole (and compares them with the parent's), and counts their pages as read.
    // Over an interval with no change, that is nearly all a PTRACK backup reads.
    const idleId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', fromSummaries, '--stream', '-j', '2']));
    const idle = backupOf((await fx.showJson())[0]!.backups, idleId);
    const forkPages = await mapForkPages(source.pgdata);
    console.log(`PTRACK of no change: ${pagesRead(idle)} pages read; free-space and visibility-map forks: ${forkPages} pages`);
    expect(forkPages).toBeGreaterThan(100);
    expect(pagesRead(idle)).toBeGreaterThanOrEqual(forkPages);
    expect(pagesRead(idle)).toBeLessThan(forkPages + 200);

    // The fixture really exercises the allowances: short bitmaps and set bits past a file's end.
    const rows = await source.query<{ path: string; pagemap: Buffer }>(
      `SELECT path, pagemap FROM ${PTRACK_SCHEMA}.ptrack_get_pagemapset($1::pg_lsn)`, [backupOf(inst!.backups, full).start_lsn], PTRACK_DB);
    expect(rows.length).toBeGreaterThan(0);
    let short = 0;
    let extraBits = 0;
    for (const r of rows) {
      const blocks = await stat(join(source.pgdata, r.path)).then((s) => s.size / 8192, () => undefined);
      if (blocks === undefined) continue;
      if (r.pagemap.length * 8 < blocks) short++;
      for (let b = blocks; b < r.pagemap.length * 8; b++) if (r.pagemap[b >> 3]! & (1 << (b & 7))) extraBits++;
    }
    expect(short).toBeGreaterThan(0);
    expect(extraBits).toBeGreaterThan(0);

    const t0 = Date.now();
    const dests = new Map<string, string>();
    for (const id of [delta, fromSummaries, fromPtrack]) {
      const dest = join(await makeTempDir(`ptrack-${id}`), 'data');
      await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2']);
      dests.set(id, dest);
    }
    const reference = await relationDigests(dests.get(delta)!);
    expect(reference.has(`${bigFile}.1`)).toBe(true);
    for (const id of [fromSummaries, fromPtrack]) {
      const restored = await relationDigests(dests.get(id)!);
      expect([...restored.keys()].sort()).toEqual([...reference.keys()].sort());
      expect([...restored.keys()].filter((k) => restored.get(k) !== reference.get(k))).toEqual([]);
    }

    console.log(`restores and comparison: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // A PTRACK chain starts and holds the data.
    const started = await TestCluster.adopt(dests.get(fromPtrack)!, { major: 17, name: 'ptrack-restored' });
    others.push(started);
    expect((await started.query<{ n: string }>('SELECT count(*) AS n FROM big'))[0]!.n).toBe(String(BIG_ROWS_BEFORE + BIG_ROWS_AFTER));
    expect((await started.query<{ p: string }>('SELECT pad AS p FROM big WHERE id = 65000'))[0]!.p).toBe('u'.repeat(512));
    expect((await started.query<{ n: string }>('SELECT count(*) AS n FROM t_early'))[0]!.n).toBe('2');
    expect((await started.query<{ n: string }>('SELECT count(*) AS n FROM t_trunc'))[0]!.n).toBe('100');
    expect(await started.query('SELECT count(*)::int AS n, sum(id)::text AS s FROM t_loaded')).toEqual([{ n: 400000, s: '80000200000' }]);
    expect(await started.query('SELECT count(*)::int AS n, sum(id)::text AS s FROM t_bulk')).toEqual([{ n: 200000, s: '20000100000' }]);
    expect((await started.query<{ n: string }>('SELECT count(*) AS n FROM fresh', [], 'db_new'))[0]!.n).toBe('5000');
    expect(await started.query("SELECT 1 FROM pg_database WHERE datname = 'db_drop'")).toEqual([]);
    expect(await started.tableDigest(PTRACK_DB)).toEqual(await source.tableDigest(PTRACK_DB));
    await started.amcheck();
    console.log(`start, data checks and amcheck: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});

describe('PTRACK from ptrack on a standby of PostgreSQL 17', () => {
  let primary: TestCluster;
  let standby: TestCluster | undefined;
  let fx: RepoFixture;
  const others: TestCluster[] = [];

  beforeAll(async () => {
    primary = await TestCluster.create({ major: 17, name: 'ptrack17-primary', settings: { autovacuum: 'off', hot_standby: 'on' } });
    fx = await newRepo(primary);
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await standby?.destroy();
    await primary?.destroy();
  });

  // ptrack keeps its map on a standby too (it marks the pages replay writes), and pg_probackup
  // takes PTRACK backups from standbys. The extension, created on the primary, reaches the
  // standby with the catalog; there it answers from the standby's own WAL summaries.
  it('backs up the standby from its ptrack map, restoring the same relation files as DELTA', async () => {
    const q = (sql: string, db = 'postgres') => primary.query(sql, [], db);
    await q(`CREATE DATABASE ${PTRACK_DB}`);
    await createPtrack(primary, PTRACK_DB);
    await q('CREATE TABLE t_upd AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 60000) g');
    await q("CREATE TABLE t_cold AS SELECT g AS id, repeat('c', 200) AS pad FROM generate_series(1, 100000) g");
    // COPY extends by several pages at a time and leaves those it has not filled as zeros on disk.
    await q('CREATE TABLE t_loaded (id int)');
    await q("COPY t_loaded FROM PROGRAM 'seq 1 300000'");
    await q('CREATE TABLE in_tracked AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 20000) g', PTRACK_DB);
    for (const db of ['postgres', PTRACK_DB]) await q('VACUUM', db); // hint bits and the visibility map, before the backups
    const primaryFull = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    standby = await restoreStandby(fx.ok, primary, primaryFull, { name: 'ptrack17-standby' });
    await fx.ok(['set-config', '--instance', 'main', '-D', standby.pgdata, ...connectionArgs(standby)]);
    // A checkpoint on the primary, replayed: the standby's backup starts at a restartpoint made from it.
    const caughtUp = async (): Promise<void> => {
      await q('CHECKPOINT');
      await standby!.waitUntilReplayed(primary);
    };
    await caughtUp();
    const standbyFull = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    await q('UPDATE t_upd SET val = upper(val) WHERE id % 40 = 0');
    await q('DELETE FROM t_upd WHERE id % 91 = 0');
    await q("UPDATE t_cold SET pad = 'warm' WHERE id = 1"); // one page of ~3,000
    await q('CREATE TABLE t_new AS SELECT g AS id FROM generate_series(1, 5000) g');
    await q('UPDATE in_tracked SET val = upper(val) WHERE id % 100 = 0', PTRACK_DB);
    await caughtUp();
    const expected = await primary.tableDigest();

    const delta = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--parent', standbyFull, '--stream', '-j', '2']));
    const fromPtrack = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', standbyFull, '--stream', '-j', '2', '-d', PTRACK_DB]));
    const [inst] = await fx.showJson();
    const d = backupOf(inst!.backups, delta);
    const pt = backupOf(inst!.backups, fromPtrack);
    expect([d.status, pt.status]).toEqual(['OK', 'OK']);
    expect(pt.change_source).toBe('ptrack');
    console.log(`pages read on the standby: DELTA ${pagesRead(d)}, PTRACK (ptrack) ${pagesRead(pt)}`);
    expect(pagesRead(pt)).toBeLessThan(pagesRead(d) / 4);

    const dests = new Map<string, string>();
    for (const id of [delta, fromPtrack]) {
      const dest = join(await makeTempDir(`ptrack-stb-${id}`), 'data');
      await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2', '--archive-mode', 'off']);
      dests.set(id, dest);
    }
    expect(await readFile(join(dests.get(fromPtrack)!, 'backup_label'), 'utf8')).toMatch(/^BACKUP FROM: standby$/m);
    const reference = await relationDigests(dests.get(delta)!);
    const restored = await relationDigests(dests.get(fromPtrack)!);
    expect([...restored.keys()].sort()).toEqual([...reference.keys()].sort());
    expect([...restored.keys()].filter((f) => restored.get(f) !== reference.get(f))).toEqual([]);

    const started = await TestCluster.adopt(dests.get(fromPtrack)!, { major: 17, name: 'ptrack-stb-restored' });
    others.push(started);
    expect(await started.tableDigest()).toEqual(expected);
    expect(await started.tableDigest(PTRACK_DB)).toEqual(await primary.tableDigest(PTRACK_DB));
    await started.amcheck();
  });
});

describe('PTRACK refusals', () => {
  const clusters: TestCluster[] = [];

  afterAll(async () => {
    for (const c of clusters) await c.destroy();
  });

  async function refused(fx: RepoFixture, args: string[], status: number, pattern: RegExp): Promise<string> {
    const r = await fx.run(['backup', '--instance', 'main', '-b', 'PTRACK', '--stream', ...args]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(status);
    const error = r.stderr.split('\n').find((l) => /^error:/i.test(l)) ?? '';
    expect(error, r.stderr).toMatch(pattern);
    return error;
  }

  /** No PTRACK backup may have been left usable by a refusal. */
  async function noUsablePtrack(fx: RepoFixture): Promise<void> {
    const [inst] = await fx.showJson();
    expect(inst!.backups.filter((b) => b.backup_mode === 'PTRACK' && (b.status === 'OK' || b.status === 'DONE'))).toEqual([]);
  }

  it('without ptrack on PostgreSQL 15: one line saying how to enable a change map', async () => {
    const c = await TestCluster.create({ major: 15, name: 'ptrack15' });
    clusters.push(c);
    const fx = await newRepo(c);
    await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']);
    const line = await refused(fx, [], 5, /ptrack/i);
    console.log(line);
    await noUsablePtrack(fx);
  });

  it('on 17: takes the oldest WAL summary by LSN, not by its text (summaries past 0/10000000)', async () => {
    // As text, LSN 0/10000028 sorts before 0/2000028. With the older summaries gone (as
    // wal_summary_keep_time removes them), the oldest left begins at the parent's start, a
    // 7-digit LSN, and newer ones at 8-digit LSNs: read by text order, the summaries would seem
    // to begin after the parent, and the backup be refused.
    const c = await TestCluster.create({ major: 17, name: 'ptrack17-lsn-text' });
    clusters.push(c);
    const fx = await newRepo(c);
    await c.query('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g');
    const full = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    const fullStart = parseLsn(backupOf((await fx.showJson())[0]!.backups, full).start_lsn);
    expect(fullStart < 0x10000000n).toBe(true);

    // WAL past 0/10000000, then a checkpoint: a summary begins at an 8-digit LSN.
    for (let lsn = fullStart; lsn < 0x10000000n; ) {
      await c.query('INSERT INTO t VALUES (0)');
      const [r] = await c.query<{ lsn: string }>('SELECT pg_switch_wal()::text AS lsn');
      lsn = parseLsn(r!.lsn);
    }
    await c.query('UPDATE t SET id = id + 1 WHERE id < 10');
    await c.query('CHECKPOINT');

    // Remove the summaries that end at or before the parent's start: they cannot matter to it.
    const dir = join(c.pgdata, 'pg_wal', 'summaries');
    const endOf = (name: string) => (BigInt(`0x${name.slice(24, 32)}`) << 32n) | BigInt(`0x${name.slice(32, 40)}`);
    const older = (await readdir(dir)).filter((n) => n.endsWith('.summary') && endOf(n) <= fullStart);
    expect(older.length).toBeGreaterThan(0);
    for (const n of older) await rm(join(dir, n));

    const ptrack = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', full, '--stream']));
    const b = backupOf((await fx.showJson())[0]!.backups, ptrack);
    expect(b.change_source).toBe('wal-summary');
    expect(parseLsn(b.start_lsn) >= 0x10000000n).toBe(true);
    await fx.ok(['validate', '--instance', 'main', '-i', ptrack]);
  });

  it('on 17: summarize_wal off, then a parent older than the summaries, then one older than ptrack_init_lsn', async () => {
    const c = await TestCluster.create({ major: 17, name: 'ptrack17-late', settings: { summarize_wal: 'off' } });
    clusters.push(c);
    const fx = await newRepo(c);
    await c.query('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g');
    const full = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    await refused(fx, [], 5, /summarize_wal is off/);

    // Summaries start now, after the parent began: they cannot vouch for its interval. (Enabled
    // right after the FULL backup, the summarizer would start at the last checkpoint's redo
    // pointer, the parent's start, and cover it.)
    await c.query('CHECKPOINT');
    await c.query('ALTER SYSTEM SET summarize_wal = on');
    await c.query('SELECT pg_reload_conf()');
    await c.query('UPDATE t SET id = id + 1 WHERE id < 10');
    await c.query('CHECKPOINT');
    await refused(fx, ['--parent', full], 3, /before the WAL summaries/);

    // ptrack (the fixture reports tracking since the oldest summary) refuses the same parent.
    await c.query(`CREATE DATABASE ${PTRACK_DB}`);
    await createPtrack(c, PTRACK_DB);
    await refused(fx, ['--parent', full, '-d', PTRACK_DB], 3, /ptrack tracks changes only since/);
    await noUsablePtrack(fx);

    // A new FULL backup is a parent both can vouch for.
    const full2 = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    await c.query('UPDATE t SET id = id + 1 WHERE id < 10');
    await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', full2, '--stream']);
    await fx.ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', full2, '--stream', '-d', PTRACK_DB]);
  });
});
