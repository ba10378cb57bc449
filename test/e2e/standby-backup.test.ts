// Backups from a standby, which spares the primary the reading. A FULL backup of the primary is
// restored as a streaming standby (restore --as-standby), the instance is pointed at the standby
// (the same cluster: set-config), and the standby is backed up while the primary writes:
//
// - a FULL backup of the standby, then DELTA (and on 17+ PTRACK, from the standby's own WAL
//   summaries) with it as parent, and a DELTA whose parent is the primary's FULL: each restores
//   and starts, and holds the primary's tables as they were when the standby had replayed them;
// - PAGE is refused on a standby (it has to switch WAL), with one line saying what to take instead.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, connectionArgs, createArchivingInstance, postgresRunner, restoreStandby, type ShowBackup, type ShowInstance } from './pgkeep-fixture.js';

// One major of each kind: 13 (pg_start_backup, as 14), 15 (pg_backup_start, as 16), 17 and 18
// (WAL summaries: PTRACK on the standby).
describe.each([13, 15, 17, 18] as PgMajor[])('backups from a standby on PostgreSQL %i', (major) => {
  let repo: string;
  let primary: TestCluster;
  let standby: TestCluster;
  const others: TestCluster[] = [];
  const { pgkeep, ok } = postgresRunner(() => repo);
  const backups = async (): Promise<ShowBackup[]> => (JSON.parse((await ok(['show', '--format', 'json'])).stdout) as ShowInstance[])[0]!.backups;
  const backup = async (mode: string, parent?: string): Promise<string> =>
    backupIdOf(await ok(['backup', '--instance', 'main', '-b', mode, '--stream', '-j', '2', ...(parent ? ['--parent', parent] : [])]));

  /** A checkpoint on the primary (so that the standby's next restartpoint can move), replayed by the standby. */
  const caughtUp = async (): Promise<void> => {
    await primary.query('CHECKPOINT');
    await standby.waitUntilReplayed(primary);
  };

  beforeAll(async () => {
    repo = await archiveRepoDir(`stbrepo${major}`);
    primary = await createArchivingInstance(ok, repo, { major, name: `stb-primary${major}`, settings: { hot_standby: 'on' } });
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await standby?.destroy();
    await primary?.destroy();
  });

  it('backs up a streaming standby FULL, DELTA and PTRACK (17+), restoring what it had replayed; refuses PAGE', async () => {
    const q = (sql: string) => primary.query(sql);
    await q('CREATE TABLE t_upd AS SELECT g AS id, md5(g::text) AS val FROM generate_series(1, 40000) g');
    await q("CREATE TABLE t_cold AS SELECT g AS id, repeat('c', 200) AS pad FROM generate_series(1, 30000) g");
    const primaryFull = await backup('FULL');

    standby = await restoreStandby(ok, primary, primaryFull, { name: `stb-standby${major}` });
    await ok(['set-config', '--instance', 'main', '-D', standby.pgdata, ...connectionArgs(standby)]);

    await q("INSERT INTO t_upd SELECT g, 'before the standby FULL' FROM generate_series(40001, 41000) g");
    await caughtUp();
    const standbyFull = await backup('FULL');
    const fullRows = 41000;

    await q('UPDATE t_upd SET val = upper(val) WHERE id % 30 = 0');
    await q('DELETE FROM t_upd WHERE id % 97 = 0');
    await q('CREATE TABLE t_new AS SELECT g AS id FROM generate_series(1, 5000) g');
    await q("UPDATE t_cold SET pad = 'warm' WHERE id = 1");
    await caughtUp();
    const expected = await primary.tableDigest();

    const delta = await backup('DELTA', standbyFull);
    const deltaFromPrimary = await backup('DELTA', primaryFull);
    const ptrack = major >= 17 ? await backup('PTRACK', standbyFull) : undefined;
    const all = await backups();
    for (const id of [standbyFull, delta, deltaFromPrimary, ...(ptrack ? [ptrack] : [])]) expect(all.find((b) => b.id === id)!.status, id).toBe('OK');
    expect(all.find((b) => b.id === delta)!.parent_backup_id).toBe(standbyFull);
    expect(all.find((b) => b.id === deltaFromPrimary)!.parent_backup_id).toBe(primaryFull);
    if (ptrack) expect(all.find((b) => b.id === ptrack)!.change_source).toBe('wal-summary');

    const restoreAndOpen = async (id: string): Promise<TestCluster> => {
      const dir = join(await makeTempDir(`stb-r-${id}`, { owner: 'postgres' }), 'data');
      await ok(['restore', '--instance', 'main', '-i', id, '-D', dir, '--archive-mode', 'off', '-j', '2']);
      expect(await readFile(join(dir, 'backup_label'), 'utf8'), id).toMatch(/^BACKUP FROM: standby$/m);
      const c = await TestCluster.adopt(dir, { major, name: `stb-r${major}-${id}` });
      others.push(c);
      return c;
    };
    const fromFull = await restoreAndOpen(standbyFull);
    expect(Number((await fromFull.query<{ n: string }>('SELECT count(*) AS n FROM t_upd'))[0]!.n)).toBe(fullRows);
    await fromFull.stop();
    for (const id of [delta, deltaFromPrimary, ...(ptrack ? [ptrack] : [])]) {
      const c = await restoreAndOpen(id);
      expect(await c.tableDigest(), id).toEqual(expected);
      await c.amcheck('postgres');
      await c.stop();
    }

    const page = await pgkeep(['backup', '--instance', 'main', '-b', 'PAGE', '--stream']);
    expect(page.code).not.toBe(0);
    expect(page.stderr.split('\n').filter((l) => l.startsWith('ERROR: '))).toEqual(['ERROR: a PAGE backup switches WAL on the server, and a standby cannot']);
  });
});
