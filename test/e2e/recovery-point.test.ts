// A backup's recovery point when no transaction commits while it runs (an idle server backed up
// on a schedule): the last commit before it, read from the WAL before its start, and no further
// back than the latest earlier backup whose recovery point is known (app/backup/recovery-point.ts).
// Going back, the server's pg_wal is read first, in chunks backwards from the start; a --stream
// backup reads its own range there too, while its WAL is copied.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/core/lsn.js';
import { TestCluster } from '../helpers/cluster.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, postgresRunner, type ShowBackup, type ShowInstance } from './pgkeep-fixture.js';

describe('recovery point of a backup: from its own range, or from the WAL before it when nothing commits in it', () => {
  let repo: string;
  let source: TestCluster;
  const runner = postgresRunner(() => repo);
  const { ok } = runner;
  /** Ends the current segment without committing anything. */
  const switchWal = () => runner.switchWal(source);
  const shown = async (id: string): Promise<ShowBackup> => {
    const [inst] = JSON.parse((await ok(['show', '--instance', 'main', '--format', 'json'])).stdout) as ShowInstance[];
    const b = inst!.backups.find((x) => x.id === id);
    expect(b, `backup ${id} in show`).toBeDefined();
    return b!;
  };

  beforeAll(async () => {
    repo = await archiveRepoDir('rprepo');
    // No autovacuum: its transactions would be commits the test does not expect.
    source = await createArchivingInstance(ok, repo, { major: 15, name: 'recpoint', settings: { archive_timeout: 0, autovacuum: 'off' } });
    await source.query('CREATE TABLE t (id int)');
  });

  afterAll(async () => {
    await source?.destroy();
  });

  it('finds the last commit before the backup in the archive, and stops at an earlier backup\'s stop LSN', async () => {
    const [row] = await source.query<{ xid: string }>('INSERT INTO t VALUES (1) RETURNING pg_current_xact_id()::text AS xid');
    const commitSegment = await switchWal();

    // A: its range holds no commit; the commit is found in the segment before it, from the archive.
    const a = await shown(backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream'])));
    expect(a.recovery_xid).toBe(row!.xid);
    expect(typeof a.recovery_time).toBe('string');

    // Take away the commit's segment: B can only answer from A, whose stop it reaches going back.
    await switchWal();
    await switchWal();
    await rm(join(repo, 'instances', 'main', 'wal', commitSegment));
    const b = await shown(backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream'])));
    expect(b.recovery_xid).toBe(row!.xid);
    expect(b.recovery_time).toBe(a.recovery_time);

    // A commit after A is found before A's answer is used.
    const [later] = await source.query<{ xid: string }>('INSERT INTO t VALUES (2) RETURNING pg_current_xact_id()::text AS xid');
    await switchWal();
    const c = await shown(backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream'])));
    expect(c.recovery_xid).toBe(later!.xid);
    expect(Date.parse(c.recovery_time as string)).toBeGreaterThan(Date.parse(a.recovery_time as string));
  });

  it('reads a segment before the start backwards from pg_wal, past megabytes of WAL after the commit', async () => {
    const [row] = await source.query<{ xid: string }>('INSERT INTO t VALUES (3) RETURNING pg_current_xact_id()::text AS xid');
    // About 3 MB of WAL after the commit and no transaction end: non-transactional messages. The
    // chunks read backwards (128 KiB, then 512 KiB, then 2 MiB, ...) reach the commit in the fourth,
    // which begins on a page that starts inside a message record.
    await source.query("SELECT pg_logical_emit_message(false, 'pgkeep-test', repeat('x', 100000)) FROM generate_series(1, 30)");
    const segment = await switchWal();
    // Only pg_wal has that segment now: without it the commit would be out of reach.
    await rm(join(repo, 'instances', 'main', 'wal', segment));
    const d = await shown(backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream'])));
    expect(d.recovery_xid).toBe(row!.xid);
  });

  it('finds a commit made while the backup runs, in its own range (read from pg_wal beside the WAL copy)', async () => {
    // Enough data that the copy takes a while, and transactions committing one after another all
    // along: each notes the insert position before it, which its commit record follows.
    await source.query('CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 300000) g');
    const commits: { xid: string; before: string }[] = [];
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const [c] = await source.query<{ xid: string; before: string }>(
          'WITH p AS (SELECT pg_current_wal_insert_lsn()::text AS before) INSERT INTO t SELECT 5 FROM p RETURNING pg_current_xact_id()::text AS xid, (SELECT before FROM p) AS before',
        );
        commits.push(c!);
      }
    })();
    let id: string;
    try {
      id = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));
    } finally {
      writing = false;
      await writer;
    }
    const e = await shown(id);
    const found = commits.find((c) => c.xid === e.recovery_xid);
    expect(found, `recovery xid ${e.recovery_xid} is one of the commits written during the test`).toBeDefined();
    // Begun after the backup's start, so found in its range: the look-back stops at the start.
    expect(parseLsn(found!.before) >= parseLsn(e.start_lsn as string)).toBe(true);
    expect(parseLsn(found!.before) < parseLsn(e.stop_lsn as string)).toBe(true);
    // The last such commit: every later transaction began at or after the stop, or ends past it.
    const later = commits.filter((c) => BigInt(c.xid) > BigInt(found!.xid));
    expect(later.every((c) => parseLsn(c.before) >= parseLsn(e.start_lsn as string))).toBe(true);
  });
});
