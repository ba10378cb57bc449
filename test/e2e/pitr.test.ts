// Point-in-time restore end to end: backups record their recovery point from WAL, a restore
// without -i chooses the newest backup that ends before the target, the archive is checked
// before DEST is touched (a missing segment, a target beyond the archive), `validate` answers
// the same question without restoring, and a target on timeline 2 (made by promoting a restored
// copy that archives into the same archive) restores too.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { sleep } from '../helpers/faults.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, type ShowInstance, postgresRunner } from './pgkeep-fixture.js';

interface ArchiveJson {
  instance: string;
  timelines: { timeline: number; parent_timeline: number | null; first_segment: string | null; last_segment: string | null; gaps: unknown[]; ranges: { backups: string[] }[] }[];
}

describe.each([15, 17] as PgMajor[])('point-in-time restore on PostgreSQL %i', (major) => {
  let repo: string;
  let source: TestCluster;
  const others: TestCluster[] = [];
  const { pgkeep, ok, waitArchived, switchWal } = postgresRunner(() => repo);
  /** Inserts a row stamped with its time, then switches WAL: returns the row's time and the segment holding it. */
  const mark = async (c: TestCluster, id: number) => {
    await c.query(`INSERT INTO stamps (id) VALUES (${id})`);
    const [r] = await c.query<{ at: Date }>(`SELECT at FROM stamps WHERE id = ${id}`);
    return { at: r!.at, segment: await switchWal(c) };
  };
  const ids = async (c: TestCluster) => (await c.query<{ id: number }>('SELECT id FROM stamps ORDER BY id')).map((r) => r.id);
  const newDest = async () => join(await makeTempDir('pitrdest', { owner: 'postgres' }), 'data');
  const between = (a: Date, b: Date) => new Date((a.getTime() + b.getTime()) / 2).toISOString();

  let backupA: string;
  let backupB: string;
  let rows: { at: Date; segment: string }[];

  beforeAll(async () => {
    repo = await archiveRepoDir('pitrrepo');
    source = await createArchivingInstance(ok, repo, { major, name: `pitr${major}`, settings: { archive_timeout: 0 } });
    await ok(['set-config', '--instance', 'main', '--compress-algorithm', 'zstd']);
    await source.query('CREATE TABLE stamps (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    // A: before the rows, its WAL in the archive. B: after them, carrying its WAL (--stream).
    backupA = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL']));
    rows = [];
    for (const id of [1, 2, 3]) {
      rows.push(await mark(source, id));
      await sleep(300);
    }
    backupB = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  it('records each backup\'s recovery point: the last commit before its stop LSN, read from WAL', async () => {
    const [inst] = JSON.parse((await ok(['show', '--instance', 'main', '--format', 'json'])).stdout) as ShowInstance[];
    for (const id of [backupA, backupB]) {
      const b = inst!.backups.find((x) => x.id === id)!;
      expect(b.recovery_xid, `backup ${id}`).toMatch(/^\d+$/);
      expect(typeof b.recovery_time).toBe('string');
      expect(Date.parse(b.recovery_time as string)).toBeLessThanOrEqual(Date.parse(b.end_time as string));
    }
    // B came after row 3: its last commit is row 3's (or later), not earlier.
    const b = inst!.backups.find((x) => x.id === backupB)!;
    expect(Date.parse(b.recovery_time as string)).toBeGreaterThanOrEqual(rows[2]!.at.getTime());
  });

  it('refuses a target beyond the end of the archive before touching DEST, and validate says no', async () => {
    const dest = await newDest();
    const later = new Date(Date.now() + 3600_000).toISOString();
    const r = await pgkeep(['restore', '--instance', 'main', '-D', dest, '--recovery-target-time', later]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/beyond the end of the archive: the last archived position is [0-9A-F]+\/[0-9A-F]+ \(segment [0-9A-F]{24}/);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('ERROR')).length).toBe(1);
    expect(existsSync(dest)).toBe(false);
    const v = await pgkeep(['validate', '--instance', 'main', '--recovery-target-time', later]);
    expect(v.code).not.toBe(0);
    expect(v.stderr).toMatch(/beyond the end of the archive/);
  });

  it('refuses a restore whose WAL has a hole in the archive, naming the missing segment', async () => {
    const copy = join(await makeTempDir('pitrcopy', { owner: 'postgres' }), 'repo');
    execFileSync('cp', ['-a', repo, copy]);
    await rm(join(copy, 'instances', 'main', 'wal', rows[0]!.segment));
    const dest = await newDest();
    const r = await pgkeep(['restore', '--instance', 'main', '-D', dest, '--recovery-target-time', between(rows[0]!.at, rows[1]!.at)], copy);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`WAL segment ${rows[0]!.segment} is missing from the archive`);
    expect(existsSync(dest)).toBe(false);
    const v = await pgkeep(['validate', '--instance', 'main', '--recovery-target-time', between(rows[0]!.at, rows[1]!.at)], copy);
    expect(v.code).toBe(3);
    expect(v.stderr).toContain(rows[0]!.segment);
  });

  it('restores without -i to a time between two rows, then to a target on timeline 2', async () => {
    const target = between(rows[0]!.at, rows[1]!.at);
    const v = await ok(['validate', '--instance', 'main', '--recovery-target-time', target]);
    expect(v.stdout).toContain(`reachable from backup ${backupA}`);

    // Without --archive-mode off: the promoted copy archives its timeline 2 into the same archive.
    const dest = await newDest();
    const r = await ok(['restore', '--instance', 'main', '-D', dest, '--recovery-target-time', target, '--recovery-target-action', 'promote']);
    expect(r.stdout).toContain(`backup ${backupA} restored`);
    const copy = await TestCluster.adopt(dest, { major, name: `pitrcopy${major}` });
    others.push(copy);
    expect(await ids(copy)).toEqual([1]);
    await waitArchived('00000002.history');

    const on2: { at: Date; segment: string }[] = [];
    for (const id of [100, 101, 102]) {
      on2.push(await mark(copy, id));
      await sleep(300);
    }
    await copy.stop();
    const target2 = between(on2[1]!.at, on2[2]!.at);
    const v2 = await ok(['validate', '--instance', 'main', '--recovery-target-time', target2, '--recovery-target-timeline', 'latest']);
    expect(v2.stdout).toMatch(/following timeline 2/);
    const dest2 = await newDest();
    const r2 = await ok(['restore', '--instance', 'main', '-D', dest2, '--archive-mode', 'off', '--recovery-target-time', target2, '--recovery-target-timeline', 'latest']);
    // B ends on timeline 1 after the switch to timeline 2: only A lies on timeline 2's history.
    expect(r2.stdout).toContain(`backup ${backupA} restored`);
    const onTwo = await TestCluster.adopt(dest2, { major, name: `pitrtli2${major}` });
    others.push(onTwo);
    expect(await ids(onTwo)).toEqual([1, 100, 101]);
    await onTwo.stop();

    const [view] = JSON.parse((await ok(['show', '--archive', '--instance', 'main', '--format', 'json'])).stdout) as ArchiveJson[];
    const tlis = view!.timelines.map((t) => t.timeline);
    expect(tlis).toEqual(expect.arrayContaining([1, 2]));
    const t1 = view!.timelines.find((t) => t.timeline === 1)!;
    const t2 = view!.timelines.find((t) => t.timeline === 2)!;
    expect(t2.parent_timeline).toBe(1);
    expect(t2.last_segment).toBe(on2[2]!.segment);
    expect(t1.ranges.flatMap((x) => x.backups)).toEqual(expect.arrayContaining([backupA]));
    const plain = await ok(['show', '--archive', '--instance', 'main']);
    expect(plain.stdout).toContain(on2[2]!.segment);
  });
});
