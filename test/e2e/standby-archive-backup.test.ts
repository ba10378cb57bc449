// A standby backed up without --stream: its WAL comes from the archive the primary feeds. A
// standby cannot switch WAL, so the segment holding its stop LSN is archived only once the
// primary finishes it. The standby here does not archive itself (archive_mode off, which would
// otherwise refuse a backup without --stream):
//
// - an instance of the standby whose archive holds no WAL is refused at once, saying so;
// - with nothing making the primary switch, the backup runs out its --archive-timeout with one
//   line naming the segment and a hint that names the primary, and is left ERROR;
// - with the primary switching WAL while it waits, the backup completes and validates; restored
//   with the archive as its WAL source, it starts and holds the rows the standby had replayed.
//
// And a standby that archives too (archive_mode = always) into the archive its primary fills:
// each segment is pushed twice, the second time finding it there, byte-identical; neither
// server's archive_command may fail.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, connectionArgs, createArchivingInstance, postgresRunner, restoreStandby, type ShowBackup, type ShowInstance } from './pgkeep-fixture.js';

describe.each([13, 17] as PgMajor[])('a standby backed up from the archive on PostgreSQL %i', (major) => {
  let repo: string;
  let primary: TestCluster;
  const others: TestCluster[] = [];
  const { pgkeep, ok, switchWal, archived } = postgresRunner(() => repo);
  const backups = async (): Promise<ShowBackup[]> => (JSON.parse((await ok(['show', '--format', 'json'])).stdout) as ShowInstance[])[0]!.backups;
  const rows = async (c: TestCluster): Promise<number> => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM t_rows'))[0]!.n);

  beforeAll(async () => {
    repo = await archiveRepoDir(`sabrepo${major}`);
    primary = await createArchivingInstance(ok, repo, { major, name: `sab-primary${major}`, settings: { hot_standby: 'on' } });
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await primary?.destroy();
  });

  it('waits for the primary to archive the last segment, or times out naming the primary; restores from the archive and starts', async () => {
    await primary.query('CREATE TABLE t_rows AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 20000) g');
    const primaryFull = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    const standby = await restoreStandby(ok, primary, primaryFull, { name: `sab-standby${major}`, conf: 'archive_mode = off\n' });
    others.push(standby);
    expect((await standby.query<{ m: string }>("SELECT current_setting('archive_mode') AS m"))[0]!.m).toBe('off');
    await ok(['set-config', '--instance', 'main', '-D', standby.pgdata, ...connectionArgs(standby)]);

    await primary.query("INSERT INTO t_rows SELECT g, 'before the standby backups' FROM generate_series(20001, 23000) g");
    await primary.query('CHECKPOINT');
    await standby.waitUntilReplayed(primary);
    const expected = await rows(primary);

    // An instance of the standby whose archive nobody feeds: refused before anything is written.
    await ok(['add-instance', '--instance', 'unfed', '-D', standby.pgdata, ...connectionArgs(standby)]);
    const unfed = await pgkeep(['backup', '--instance', 'unfed', '-b', 'FULL']);
    expect(unfed.code).toBe(2);
    expect(unfed.stderr.split('\n').filter((l) => l.startsWith('ERROR: '))).toEqual([
      "ERROR: a backup of a standby without --stream needs the WAL archive, but the standby does not archive (archive_mode is off) and instance unfed's archive holds no WAL",
    ]);
    expect(await pgkeep(['show', '--instance', 'unfed', '--format', 'json']).then((r) => (JSON.parse(r.stdout) as ShowInstance[])[0]!.backups)).toEqual([]);

    // Nothing makes the primary switch: the standby's last segment never arrives.
    const timedOut = await pgkeep(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--archive-timeout', '3']);
    expect(timedOut.code).not.toBe(0);
    const errors = timedOut.stderr.split('\n').filter((l) => l.startsWith('ERROR: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^ERROR: WAL segment [0-9A-F]{24} \(needed by backup [0-9A-Z]+\) did not reach the archive within 3 s$/);
    expect(timedOut.stderr).toMatch(/^HINT: run SELECT pg_switch_wal\(\) on the primary/m);
    expect(timedOut.stdout + timedOut.stderr).toMatch(/from a standby, the last one \([0-9A-F]{24}\) once the primary finishes it/);
    const failedId = /backup ([0-9A-Z]+)\)/.exec(errors[0]!)![1]!;
    expect((await backups()).find((b) => b.id === failedId)?.status).toBe('ERROR');

    // The primary switches WAL while the backup waits: it completes and validates.
    let settled = false;
    const running = pgkeep(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--archive-timeout', '120']).finally(() => {
      settled = true;
    });
    while (!settled) {
      await new Promise((r) => setTimeout(r, 1000));
      if (!settled) await switchWal(primary);
    }
    const done = await running;
    expect(done.code, done.stderr).toBe(0);
    const standbyFull = backupIdOf(done);
    const record = (await backups()).find((b) => b.id === standbyFull)!;
    expect(record.status).toBe('OK');
    expect(record.stream).toBe(false);
    expect(record.recovery_time, 'the recovery point, read from the archived WAL').not.toBeNull();

    // Restored with the archive as its only WAL source (restore_command: archive-get).
    const dir = join(await makeTempDir(`sab-r${major}`, { owner: 'postgres' }), 'data');
    await ok(['restore', '--instance', 'main', '-i', standbyFull, '-D', dir, '-j', '2']);
    expect(await readFile(join(dir, 'backup_label'), 'utf8')).toMatch(/^BACKUP FROM: standby$/m);
    const restored = await TestCluster.adopt(dir, { major, name: `sab-r${major}` });
    others.push(restored);
    expect(await rows(restored)).toBe(expected);
    await restored.amcheck('postgres');
  });

  // archive_mode = always: the standby archives what it receives, into the archive the primary
  // also fills, as PostgreSQL's documentation describes. The second push of each segment finds
  // it there, byte-identical, and must succeed (ARCHIVE_CONFLICT is for different bytes).
  it('archive_mode = always on the standby: both servers push the same segments, with no conflict', async () => {
    await primary.query('CREATE TABLE t_both (id int)');
    const full = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));
    const standby = await restoreStandby(ok, primary, full, { name: `sab-always${major}`, conf: 'archive_mode = always\n' });
    others.push(standby);

    // Each switch waits until the primary has archived the segment: the standby's push comes second.
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      await primary.query('INSERT INTO t_both SELECT generate_series(1, 1000)');
      names.push(await switchWal(primary));
    }
    await standby.waitUntilReplayed(primary);
    interface Archiver { archived_count: string; failed_count: string; last_archived_wal: string | null; last_failed_wal: string | null }
    const archiver = async (c: TestCluster): Promise<Archiver> =>
      (await c.query<Archiver>('SELECT archived_count::text, failed_count::text, last_archived_wal, last_failed_wal FROM pg_stat_archiver'))[0]!;
    const last = names[names.length - 1]!;
    let seen = await archiver(standby);
    for (let i = 0; i < 600 && (seen.last_archived_wal ?? '') < last && seen.failed_count === '0'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = await archiver(standby);
    }
    const log = await standby.logTail(20);
    expect(seen.failed_count, `the standby's archive_command failed (last on ${seen.last_failed_wal}):\n${log}`).toBe('0');
    expect(seen.last_archived_wal, log).toBe(last);
    expect(Number(seen.archived_count)).toBeGreaterThanOrEqual(names.length);
    expect((await archiver(primary)).failed_count).toBe('0');
    expect(await archived()).toEqual(expect.arrayContaining(names));
  });
});
