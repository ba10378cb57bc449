// Incremental backups after a failover, on PostgreSQL 15 and 17. A FULL backup of a primary (on
// 17 with WAL summaries; autovacuum off) becomes a streaming standby through pgkeep restore
// --as-standby and follows the primary; the standby is promoted to timeline 2 while the old
// primary goes on writing on timeline 1 and is backed up once more (a backup past the switch
// point: split brain). The instance is then pointed at the new primary.
//
// - The first backup on timeline 2 runs before any checkpoint there, while pg_control still names
//   timeline 1: its parent must be the FULL (in the new timeline's history), never the newer
//   backup of the old primary (off it).
// - DELTA, PTRACK on 17 (WAL summaries of both timelines) and PAGE (archived WAL along the history)
//   with the FULL as parent restore byte-identical relation files, and the restored server holds
//   the new primary's data.
// - Naming the backup past the switch point as parent is refused with one clear line.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { relationDigests } from '../helpers/file-digests.js';
import { archiveRepoDir, backupIdOf, connectionArgs, createArchivingInstance, postgresRunner, type ShowBackup, type ShowInstance } from './pgkeep-fixture.js';

const count = async (c: TestCluster, table: string, db = 'postgres'): Promise<number> => Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`, [], db))[0]!.n);

describe.each([15, 17] as PgMajor[])('incremental backups across a timeline switch (PostgreSQL %i)', (major) => {
  let repo: string;
  let primary: TestCluster;
  let standby: TestCluster;
  const others: TestCluster[] = [];
  const { pgkeep, ok } = postgresRunner(() => repo);
  const backups = async (): Promise<ShowBackup[]> => (JSON.parse((await ok(['show', '--format', 'json'])).stdout) as ShowInstance[])[0]!.backups;
  const restore = async (id: string, tag: string, archiveMode = 'off'): Promise<string> => {
    const dest = join(await makeTempDir(`tli-${tag}`, { owner: 'postgres' }), 'data');
    await ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '--archive-mode', archiveMode, '-j', '2']);
    return dest;
  };

  beforeAll(async () => {
    repo = await archiveRepoDir('tlirepo');
    // A long checkpoint_timeout: the checkpoint PostgreSQL asks for after a promotion is spread
    // over it, so pg_control keeps naming timeline 1 while the first backup on timeline 2 runs.
    primary = await createArchivingInstance(ok, repo, {
      major,
      name: `tli-primary${major}`,
      settings: { autovacuum: 'off', checkpoint_timeout: '1h', max_wal_size: '1GB', hot_standby: 'on' },
    });
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await standby?.destroy();
    await primary?.destroy();
  });

  it('restores a standby (--as-standby); once it is promoted, takes DELTA, PAGE (and on 17 PTRACK) backups with a parent from before the switch, and refuses one from after it', async () => {
    const onPrimary = (sql: string, db = 'postgres') => primary.query(sql, [], db);
    await onPrimary('CREATE TABLE t_upd AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 60000) g');
    await onPrimary("CREATE TABLE t_trunc AS SELECT g AS id, repeat('t', 200) AS pad FROM generate_series(1, 10000) g");
    await onPrimary('CREATE TABLE t_drop AS SELECT g AS id FROM generate_series(1, 30000) g');
    await onPrimary("CREATE TABLE t_cold AS SELECT g AS id, repeat('c', 200) AS pad FROM generate_series(1, 50000) g");
    await onPrimary('VACUUM ANALYZE');
    const fullId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    // The standby: the FULL restored with --as-standby, following the primary (and the archive,
    // should pg_wal have moved on). A recovery target does not go with it: refused, nothing written.
    const k = primary.connection;
    const refusedDir = join(await makeTempDir('tli-refused', { owner: 'postgres' }), 'data');
    const refused = await pgkeep(['restore', '--instance', 'main', '-D', refusedDir, '--as-standby', '--recovery-target', 'immediate']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.split('\n').filter((l) => l.startsWith('ERROR: '))).toEqual(['ERROR: a standby follows its primary and has no recovery target']);
    expect(existsSync(refusedDir)).toBe(false);
    const standbyDir = join(await makeTempDir('tli-standby', { owner: 'postgres' }), 'data');
    const made = await ok(['restore', '--instance', 'main', '-i', fullId, '-D', standbyDir, '--as-standby', '--primary-conninfo', `host=${k.host} port=${k.port} user=${k.user}`]);
    expect(made.stdout).toContain(`backup ${fullId} restored into ${standbyDir} as a standby`);
    expect(existsSync(join(standbyDir, 'standby.signal'))).toBe(true);
    expect(existsSync(join(standbyDir, 'recovery.signal'))).toBe(false);
    expect(await readFile(join(standbyDir, 'postgresql.auto.conf'), 'utf8')).toMatch(/^restore_command = '.*archive-get -B .*'$/m);
    standby = await TestCluster.adopt(standbyDir, { major, name: `tli-standby${major}`, waitForRecovery: false });

    // Timeline 1 goes on; the standby replays it, summarizing as it goes.
    await onPrimary('UPDATE t_upd SET val = md5(val) WHERE id % 40 = 0');
    await onPrimary("INSERT INTO t_trunc SELECT g, 'more' FROM generate_series(1, 2000) g");
    await standby.waitUntilReplayed(primary);

    // Failover: the standby becomes timeline 2, and the old primary, not yet stopped, writes on
    // timeline 1 past the switch point and is backed up there.
    await standby.query('SELECT pg_promote()');
    await onPrimary("UPDATE t_upd SET val = 'lost in the split' WHERE id % 7 = 0");
    const splitId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2']));
    await primary.stop();
    await ok(['set-config', '--instance', 'main', '-D', standby.pgdata, ...connectionArgs(standby)]);

    // The first backup of timeline 2, before any checkpoint on it.
    const onNew = (sql: string, db = 'postgres') => standby.query(sql, [], db);
    const [control] = await onNew('SELECT timeline_id FROM pg_control_checkpoint()');
    expect(control.timeline_id, 'pg_control still names the old timeline right after the promotion').toBe(1);
    await onNew("UPDATE t_cold SET pad = 'warm' WHERE id = 1");
    const firstId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2']));
    let all = await backups();
    const first = all.find((b) => b.id === firstId)!;
    expect(first.parent_backup_id).toBe(fullId);
    expect(first.timeline).toBe(2);
    expect(all.find((b) => b.id === splitId)!.timeline).toBe(1);

    // Timeline 2's workload, then three backups against the FULL with no writes in between.
    await onNew('UPDATE t_upd SET val = upper(val) WHERE id % 50 = 0');
    await onNew('DELETE FROM t_upd WHERE id % 77 = 0');
    await onNew('TRUNCATE t_trunc');
    await onNew("INSERT INTO t_trunc SELECT g, 'again' FROM generate_series(1, 100) g");
    await onNew('DROP TABLE t_drop');
    await onNew('CREATE TABLE t_new AS SELECT g AS id, g * 2 AS twice FROM generate_series(1, 20000) g');
    await onNew('CREATE DATABASE db_new');
    await onNew('CREATE TABLE fresh AS SELECT g FROM generate_series(1, 5000) g', 'db_new');
    // Pruning a page is a write: a catalog page left with dead rows (the dropped table's
    // statistics) would be pruned by whatever reads it next, between two of the backups below.
    await onNew('VACUUM');
    await onNew('CHECKPOINT');
    const expected = await standby.tableDigest();

    const deltaId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'DELTA', '--parent', fullId, '--stream', '-j', '2']));
    // PTRACK from WAL summaries on 17 (both timelines' summaries); 15 has no change map.
    const ptrackId = major >= 17 ? backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'PTRACK', '--parent', fullId, '--stream', '-j', '2'])) : undefined;
    const pageId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'PAGE', '--parent', fullId, '--stream', '-j', '2', '--archive-timeout', '120']));
    all = await backups();
    const sources = new Map([[deltaId, 'lsn-scan'], ...(ptrackId ? [[ptrackId, 'wal-summary'] as [string, string]] : []), [pageId, 'wal']]);
    for (const [id, source] of sources) {
      const b = all.find((x) => x.id === id)!;
      expect(b.status, id).toBe('OK');
      expect(b.parent_backup_id, id).toBe(fullId);
      expect(b.timeline, id).toBe(2);
      expect(b.change_source, id).toBe(source);
    }
    const pagesRead = (id: string) => (all.find((x) => x.id === id)!.metrics as Record<string, number>).pagesRead!;
    // t_cold (over 1,400 pages) changed in one page: DELTA reads it all, the maps one page of it.
    if (ptrackId) expect(pagesRead(ptrackId)).toBeLessThan(pagesRead(deltaId) - 1400);
    expect(pagesRead(pageId)).toBeLessThan(pagesRead(deltaId) - 1400);

    const dirs = new Map<string, string>();
    for (const id of sources.keys()) dirs.set(id, await restore(id, id));
    const reference = await relationDigests(dirs.get(deltaId)!);
    for (const id of [...(ptrackId ? [ptrackId] : []), pageId]) {
      const got = await relationDigests(dirs.get(id)!);
      expect([...got.keys()].sort(), id).toEqual([...reference.keys()].sort());
      expect([...got.keys()].filter((key) => got.get(key) !== reference.get(key)), id).toEqual([]);
    }

    const restored = await TestCluster.adopt(dirs.get(ptrackId ?? pageId)!, { major, name: `tli-restored${major}` });
    others.push(restored);
    expect(await restored.tableDigest()).toEqual(expected);
    expect(await count(restored, "t_upd WHERE val = 'lost in the split'")).toBe(0);
    expect(await count(restored, 't_cold WHERE pad = \'warm\'')).toBe(1);
    expect(await count(restored, 'fresh', 'db_new')).toBe(5000);
    const [{ tli }] = await restored.query('SELECT timeline_id AS tli FROM pg_control_checkpoint()');
    expect(tli).toBeGreaterThanOrEqual(2);
    await restored.amcheck('postgres');
    await restored.stop();

    // The backup of the old primary past the switch point cannot be a parent here.
    const before = (await backups()).length;
    for (const mode of ['DELTA', major >= 17 ? 'PTRACK' : 'PAGE']) {
      const r = await pgkeep(['backup', '--instance', 'main', '-b', mode, '--parent', splitId, '--stream']);
      expect(r.code, r.stderr).not.toBe(0);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR: '));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(new RegExp(`parent backup ${splitId} \\(timeline 1\\) is not in the history of the server's timeline 2: timeline 2 branched off timeline 1 at LSN [0-9A-F]+/[0-9A-F]+, before the backup's stop LSN`));
    }
    expect((await backups()).length).toBe(before);
    await ok(['validate', '--instance', 'main']);
  });
});
