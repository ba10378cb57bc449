// Retention end to end on one archiving PostgreSQL 15 cluster: two FULL+DELTA chains, taken
// without --stream so that their WAL is in the archive; redundancy 1 with --dry-run (nothing
// changes), then --delete-expired --delete-wal (the first chain and the WAL before the kept FULL
// go, the newest backup still restores); pinning keeps a chain; --merge-expired on `backup` folds
// an expired FULL into its pinned child. The window policy needs backups days old: it is held to
// its rules by the planner's unit tests (test/unit/retention.test.ts), not here.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn, segmentNumber, walFileName } from '../../src/core/lsn.js';
import { TestCluster } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, type ShowBackup, type ShowInstance, postgresRunner } from './pgkeep-fixture.js';

const SEG = 16 * 1024 * 1024;

describe('retention: delete-expired, delete-wal, pinning, merge-expired (PostgreSQL 15)', () => {
  let repo: string;
  let source: TestCluster;
  let restored: TestCluster | undefined;
  const ids: Record<string, string> = {};
  const { pgkeep, ok, archived, switchWal } = postgresRunner(() => repo);
  const backups = async (): Promise<ShowBackup[]> => (JSON.parse((await ok(['show', '--instance', 'main', '--format', 'json'])).stdout) as ShowInstance[])[0]!.backups;
  const write = async (n: number) => {
    await source.query('INSERT INTO t SELECT g FROM generate_series($1::int, $2::int) g', [n * 1000, n * 1000 + 999]);
    await switchWal(source);
  };
  const backup = async (mode: string, ...extra: string[]) => backupIdOf(await ok(['backup', '--instance', 'main', '-b', mode, ...extra]));

  beforeAll(async () => {
    repo = await archiveRepoDir('retrepo');
    source = await createArchivingInstance(ok, repo, { major: 15, name: 'retention15', settings: { archive_timeout: 0 } });
    await source.query('CREATE TABLE t (id int PRIMARY KEY)');
    await write(1);
    ids.F1 = await backup('FULL');
    await write(2);
    ids.D1 = await backup('DELTA');
    await write(3);
    ids.F2 = await backup('FULL');
    await write(4);
    ids.D2 = await backup('DELTA');
    await write(5);
  });

  afterAll(async () => {
    await restored?.destroy();
    await source?.destroy();
  });

  it('without a policy, --delete-expired deletes nothing and says so', async () => {
    const r = await ok(['delete', '--instance', 'main', '--delete-expired']);
    expect(r.stdout).toContain('no retention policy is set');
    expect(r.stdout).toContain('retention: 0 backup(s) deleted, 0 merged, 4 kept');
    expect((await backups()).length).toBe(4);
    const cfg = await ok(['show-config', '--instance', 'main']);
    expect(cfg.stdout).toContain('retention-redundancy = 0 (off)');
  });

  it('set-config stores the policy; show-config shows it, plain and json', async () => {
    await ok(['set-config', '--instance', 'main', '--retention-redundancy', '1']);
    expect((await ok(['show-config', '--instance', 'main'])).stdout).toMatch(/^retention-redundancy = 1$/m);
    const json = JSON.parse((await ok(['show-config', '--instance', 'main', '--format', 'json'])).stdout) as { retention: Record<string, number> };
    expect(json.retention).toEqual({ redundancy: 1, window_days: 0, wal_depth: 0 });
    const bad = await pgkeep(['set-config', '--instance', 'main', '--retention-window', '-1']);
    expect(bad.code).not.toBe(0);
  });

  it('--dry-run lists the decisions and changes nothing', async () => {
    const before = { backups: await backups(), wal: await archived() };
    const r = await ok(['delete', '--instance', 'main', '--delete-expired', '--delete-wal', '--dry-run']);
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.F1} \\(FULL, OK\\): would delete: expired`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.D1} \\(DELTA, OK\\): would delete: expired`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.F2} \\(FULL, OK\\): kept: valid FULL backup 1 of redundancy 1$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.D2} \\(DELTA, OK\\): kept: in the chain of ${ids.F2}`, 'm'));
    expect(r.stdout).toMatch(/^dry run, nothing changed: retention: 2 backup\(s\) to delete, 0 to merge, 2 kept; [1-9]\d* WAL segment\(s\)/m);
    expect(await backups()).toEqual(before.backups);
    expect(await archived()).toEqual(before.wal);
  });

  it('--delete-expired --delete-wal deletes the first chain and the WAL before the kept FULL, and the newest backup restores', async () => {
    const before = await archived();
    const f2 = (await backups()).find((b) => b.id === ids.F2)!;
    const keepFrom = segmentNumber(parseLsn(f2.start_lsn), SEG);
    const r = await ok(['delete', '--instance', 'main', '--delete-expired', '--delete-wal']);
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.F1} \\(FULL, OK\\): deleted: expired`, 'm'));
    expect(r.stdout).toMatch(/retention: 2 backup\(s\) deleted, 0 merged, 2 kept; [1-9]\d* WAL segment\(s\) \(\d+ file\(s\), [1-9]\d* bytes\) deleted/);
    expect((await backups()).map((b) => b.id)).toEqual([ids.D2, ids.F2]);

    // Every segment (and .backup file) of a segment below F2's start went; everything else stayed.
    const after = await archived();
    const segOf = (name: string) => BigInt(`0x${name.slice(8, 16)}`) * 0x100n + BigInt(`0x${name.slice(16, 24)}`);
    const expected = before.filter((n) => n.endsWith('.history') || segOf(n) >= keepFrom);
    expect(after).toEqual(expected);
    expect(before.length).toBeGreaterThan(after.length);
    expect(after).toContain(walFileName(1, keepFrom, SEG));
    expect(after.some((n) => n.endsWith('.backup'))).toBe(true); // F2's and D2's backup history files

    const dest = join(await makeTempDir('retrestore', { owner: 'postgres' }), 'data');
    await ok(['restore', '--instance', 'main', '-i', ids.D2!, '-D', dest, '--archive-mode', 'off']);
    restored = await TestCluster.adopt(dest, { major: 15, name: 'retrestored15' });
    const [row] = await restored.query<{ n: string }>('SELECT count(*) AS n FROM t');
    // Without a target, recovery replays the archive from D2's start to its end: the WAL kept is whole.
    expect(Number(row!.n)).toBe(5000);
    await restored.destroy();
    restored = undefined;
  });

  it('a pinned backup keeps its chain; the pin shows in show and survives catalog rebuild; --ttl 0 unpins', async () => {
    await write(6);
    ids.F3 = await backup('FULL', '--stream');
    const pin = await ok(['set-backup', '--instance', 'main', '-i', ids.D2!, '--ttl', '1d', '--note', 'keep me']);
    expect(pin.stdout).toMatch(new RegExp(`^backup ${ids.D2}: pinned until \\d{4}-.*Z, note: keep me$`, 'm'));
    const r = await ok(['delete', '--instance', 'main', '--delete-expired']);
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.D2} \\(DELTA, OK\\): kept: pinned until`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.F2} \\(FULL, OK\\): kept: needed by ${ids.D2}$`, 'm'));
    expect((await backups()).map((b) => b.id)).toEqual([ids.F3, ids.D2, ids.F2]);

    const d2 = (await backups()).find((b) => b.id === ids.D2)!;
    expect(typeof d2.expire_time).toBe('string');
    expect(d2.note).toBe('keep me');
    await ok(['catalog', 'rebuild']);
    expect((await backups()).find((b) => b.id === ids.D2)!.expire_time).toBe(d2.expire_time);
    expect((await ok(['show', '--instance', 'main', '-i', ids.D2!])).stdout).toContain(`expire_time = ${d2.expire_time as string}`);

    expect((await ok(['set-backup', '--instance', 'main', '-i', ids.D2!, '--ttl', '0'])).stdout).toContain('not pinned');
    expect((await backups()).find((b) => b.id === ids.D2)!.expire_time).toBeNull();
    const past = await pgkeep(['set-backup', '--instance', 'main', '-i', ids.D2!, '--expire-time', '2001-01-01 00:00:00']);
    expect(past.code).toBe(2);
    expect(past.stderr).toContain('is in the past');
  });

  it('backup --merge-expired --delete-expired: an expired FULL is merged into its pinned child, the rest of the old chain goes', async () => {
    await write(7);
    ids.D3 = await backup('DELTA', '--stream');
    await ok(['set-backup', '--instance', 'main', '-i', ids.D3!, '--expire-time', new Date(Date.now() + 3600_000).toISOString()]);
    await write(8);
    const r = await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--delete-expired', '--merge-expired', '--delete-wal']);
    ids.F4 = backupIdOf(r);
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.D3} \\(DELTA, OK\\): merged: pinned until .*; absorbs its expired chain ${ids.F3}$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.F3} \\(FULL, OK\\): merged and removed: expired`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^backup ${ids.F2} \\(FULL, OK\\): deleted: expired`, 'm'));
    const now = await backups();
    expect(now.map((b) => [b.id, b.backup_mode, b.status])).toEqual([[ids.F4, 'FULL', 'OK'], [ids.D3, 'FULL', 'OK']]);
    expect(now.find((b) => b.id === ids.D3)!.expire_time).not.toBeNull();
    // The merged backup is whole: validate reads every file.
    await ok(['validate', '--instance', 'main', '-i', ids.D3!]);
  });
});
