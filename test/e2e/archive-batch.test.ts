// archive-push --batch-size: one run pushes the file PostgreSQL names and then the files waiting
// in pg_wal/archive_status, oldest first, marking each .done so that the archiver skips it. A
// real server builds up the backlog (its archive_command failing), then pgkeep drains it: run
// by hand to see a batch stop at a conflict, then as the server's archive_command.
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, createArchivingInstance, pgkeepArchiveCommand, postgresRunner } from './pgkeep-fixture.js';

describe.each([13, 15] as PgMajor[])('archive-push --batch-size on PostgreSQL %i', (major) => {
  let repo: string;
  let source: TestCluster;
  const runner = postgresRunner(() => repo);
  const { pgkeep, ok, archived } = runner;
  const segments: string[] = [];

  const statusFiles = async () => (await readdir(join(source.pgdata, 'pg_wal', 'archive_status'))).sort();
  const archivedCount = async () => Number((await source.query<{ n: string }>('SELECT archived_count AS n FROM pg_stat_archiver'))[0]!.n);

  beforeAll(async () => {
    repo = await archiveRepoDir('batchrepo');
    // Archiving fails until the test says otherwise: the segments wait as .ready files.
    source = await createArchivingInstance(ok, repo, { major, name: `batch${major}`, settings: { archive_command: 'exit 1', archive_timeout: 0 } });
    await ok(['set-config', '--instance', 'main', '--compress-algorithm', 'zstd']);
    for (let i = 0; i < 4; i++) {
      await source.query("SELECT pg_logical_emit_message(false, 'pgkeep-test', 'batch')");
      segments.push((await source.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f);
    }
  });

  afterAll(async () => {
    await source?.destroy();
  });

  it('stops at the first file it cannot push, leaving it and the later ones .ready', async () => {
    const [s1, s2, s3, s4] = segments as [string, string, string, string];
    expect(await statusFiles()).toEqual(expect.arrayContaining(segments.map((s) => `${s}.ready`)));
    // s3's name in the archive already holds other content (s1's): a conflict.
    await ok(['archive-push', '--instance', 'main', '--wal-file-path', join(source.pgdata, 'pg_wal', s1), '--wal-file-name', s3]);

    const r = await ok(['archive-push', '--instance', 'main', '--wal-file-path', join(source.pgdata, 'pg_wal', s1), '--wal-file-name', s1, '--batch-size', '10']);
    expect(r.stderr).toMatch(new RegExp(`WARNING: --batch-size: ${s3} left for PostgreSQL to push \\(the archive already holds a different ${s3}`));
    expect(await archived()).toEqual([s1, s2, s3].sort());
    const status = await statusFiles();
    // s1 is PostgreSQL's to mark, after its archive_command returns; s2 was pushed in the batch.
    expect(status).toContain(`${s1}.ready`);
    expect(status).toContain(`${s2}.done`);
    expect(status).not.toContain(`${s2}.ready`);
    expect(status).toContain(`${s3}.ready`);
    expect(status).toContain(`${s4}.ready`);
  });

  it('as archive_command, pushes the waiting files in one run, which the archiver then skips', async () => {
    const [s1, , s3] = segments as [string, string, string, string];
    await rm(join(repo, 'instances', 'main', 'wal', s3));
    const before = await archivedCount();
    await source.query(`ALTER SYSTEM SET archive_command = '${`${pgkeepArchiveCommand(repo)} --batch-size 8`.replace(/'/g, "''")}'`);
    await source.query('SELECT pg_reload_conf()');
    // A new segment wakes the archiver (a reload alone does not on PostgreSQL 13).
    await source.query("SELECT pg_logical_emit_message(false, 'pgkeep-test', 'batch')");
    const s5 = (await source.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
    await runner.waitArchived(s5);
    for (let i = 0; i < 100 && (await statusFiles()).some((f) => f.endsWith('.ready')); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await statusFiles()).filter((f) => f.endsWith('.ready'))).toEqual([]);
    expect(await archived()).toEqual([...segments, s5].sort());
    // The archiver ran archive_command for s1 (already archived; the batch pushed s3 and s4, and s5
    // too unless it came after that run) and at most for s5: never for s3 or s4.
    // PostgreSQL 13 reports through its statistics collector, a moment later.
    const archiver = async () => (await source.query<{ n: string; w: string | null }>('SELECT archived_count AS n, last_archived_wal AS w FROM pg_stat_archiver'))[0]!;
    for (let i = 0; i < 100 && Number((await archiver()).n) === before; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, major < 15 ? 1000 : 0));
    const { n, w: last } = await archiver();
    const runs = Number(n) - before;
    expect([1, 2]).toContain(runs);
    expect(last).toBe(runs === 1 ? s1 : s5);

    // Each archived segment is the server's own, byte for byte.
    const dir = await makeTempDir('batchget', { owner: 'postgres' });
    for (const s of segments) {
      await ok(['archive-get', '--instance', 'main', '--wal-file-path', join(dir, s), '--wal-file-name', s]);
      expect((await readFile(join(dir, s))).equals(await readFile(join(source.pgdata, 'pg_wal', s))), s).toBe(true);
    }

    // Archiving goes on as usual for what comes next.
    const next = await runner.switchWal(source);
    expect(await archived()).toContain(next);
  });

  it('refuses a batch size out of range, before pushing anything', async () => {
    const r = await pgkeep(['archive-push', '--instance', 'main', '--wal-file-path', join(source.pgdata, 'pg_wal', segments[0]!), '--wal-file-name', segments[0]!, '--batch-size', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/batch-size/);
  });
});
