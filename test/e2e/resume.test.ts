// Resumable backups (docs/resume.md) on PostgreSQL 15. An attempt without --stream on a server
// whose archive_command always fails copies everything, journals it, and then waits for its WAL
// to reach the archive: a deterministic point to kill it with -9 (or, with a short
// --archive-timeout, to watch it fail on its own and keep its journalled files).
//
//   - a FULL backup killed with -9 is resumed by the next FULL backup: unchanged relation files
//     are hard-linked (same inode), the table updated in between is copied again, the old backup
//     is removed, and the restore starts and holds the update;
//   - a failure that runs abandon keeps exactly the journalled files (a stray file and a dead
//     writer's temporary are removed) and says how to resume or delete it;
//   - --no-resume starts afresh and leaves the ERROR backup; --resume with nothing to resume, or
//     with another compression, fails with NOTHING_TO_RESUME;
//   - a DELTA backup killed with -9 and resumed restores to the source's data.
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { sleep } from '../helpers/faults.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';
import {
  backupDir as backupDirOf,
  journalEntries,
  journalPaths as journalPathsOf,
  killAttempt,
  startWaitingAttempt as startAttempt,
  storedFile as storedFileOf,
} from './resume-attempt.js';

describe('resumable backups', () => {
  let cluster: TestCluster;
  let fx: RepoFixture;
  /** pg_relation_filepath of the tables the tests watch. */
  let bigPath: string;
  let accountsPath: string;

  beforeAll(async () => {
    cluster = await TestCluster.create({
      major: 15,
      name: 'resume',
      // Archiving that never succeeds: a backup without --stream copies everything and then waits.
      settings: { archive_mode: 'on', archive_command: 'false', autovacuum: 'off', max_wal_size: '1GB' },
    });
    await cluster.pgbenchInit(10);
    await cluster.query('CREATE TABLE big (id int, pad text)');
    await cluster.query("INSERT INTO big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 900000) g");
    // Hint bits and visibility set now, so that reading a table later does not write its pages.
    await cluster.query('VACUUM (FREEZE, ANALYZE)');
    await cluster.query('CHECKPOINT');
    bigPath = (await cluster.query<{ p: string }>("SELECT pg_relation_filepath('big') AS p"))[0]!.p;
    accountsPath = (await cluster.query<{ p: string }>("SELECT pg_relation_filepath('pgbench_accounts') AS p"))[0]!.p;
    fx = await newRepo(cluster);
    await fx.ok(['set-config', '--instance', 'main', '--compress-algorithm', 'zstd', '--compress-level', '1']);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  const backupDir = (id: string) => backupDirOf(fx, id);
  // pgbench_accounts of scale 10 (134 MB) is larger than a part: with -j 2 it is stored in parts
  // (repository-format.md, "Parts"), and its first part stands for it here.
  const storedFile = (id: string, path: string) => storedFileOf(fx, id, path);
  const journalPaths = (id: string) => journalPathsOf(fx, id);
  /** The stored files the journal of `id` names: a file stored in parts is its part files. */
  const journalStoredFiles = async (id: string) => (await journalEntries(fx, id)).flatMap((e) => (e.parts ? e.parts.map((_p, i) => `${e.path}.part${i}`) : [e.path]));
  const startWaitingAttempt = (mode: 'FULL' | 'DELTA', archiveTimeout: number) => startAttempt(fx, mode, archiveTimeout, bigPath);

  async function restoreAndStart(id: string, name: string): Promise<TestCluster> {
    const dest = join(await makeTempDir('resume-restore'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2']);
    return TestCluster.adopt(dest, { major: 15, name });
  }

  const bigDigest = async (c: TestCluster) =>
    (await c.query<{ n: string; md5: string }>("SELECT count(*)::text AS n, md5(string_agg(md5(b::text), '' ORDER BY id)) AS md5 FROM big b"))[0];

  it('resumes a FULL backup killed with -9: unchanged files are linked, a changed one is copied again', async () => {
    const attempt = await startWaitingAttempt('FULL', 120);
    const journalled = await journalPaths(attempt.id);
    expect(journalled).toEqual(expect.arrayContaining([bigPath, accountsPath]));
    await killAttempt(attempt);
    const oldAccounts = await stat(storedFile(attempt.id, accountsPath));
    const oldBig = await stat(storedFile(attempt.id, bigPath));

    // Changed between the attempts: big's file must not be reused.
    await cluster.query("UPDATE big SET pad = 'changed' WHERE id <= 100");
    const expected = await bigDigest(cluster);
    // PGKEEP_DEBUG: a file copied again says why, which the inode checks below then show.
    const r = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2'], { env: { PGKEEP_DEBUG: '1' } });
    const id = backupIdOf(r);
    expect(r.stderr).toMatch(/left RUNNING by process \d+, which is gone: marking it ERROR \(the next FULL backup resumes it/);
    expect(r.stderr).toContain(`resuming interrupted backup ${attempt.id}`);
    const reused = Number(/(\d+) files \(\d+ bytes\) reused from interrupted backup/.exec(r.stderr)?.[1]);
    expect(reused).toBeGreaterThan(0);
    expect(reused).toBeLessThan(journalled.length);
    expect(r.stdout).toMatch(new RegExp(`backup ${id} OK`));

    // The unchanged table is the very file the attempt stored; the updated one was copied again.
    expect((await stat(storedFile(id, accountsPath))).ino, r.stderr).toBe(oldAccounts.ino);
    expect((await stat(storedFile(id, bigPath))).ino).not.toBe(oldBig.ino);
    expect(r.stderr).toMatch(new RegExp(`DEBUG: ${bigPath} copied again, not reused: its block \\d+ has LSN \\w+/\\w+, not below the attempt's start`));
    const record = JSON.parse(await readFile(join(backupDir(id), 'backup.json'), 'utf8')) as { metrics: Record<string, number> };
    expect(record.metrics.filesReused).toBe(reused);
    expect(existsSync(join(backupDir(id), 'resume.jsonl'))).toBe(false);
    // The interrupted backup is gone.
    expect(existsSync(backupDir(attempt.id))).toBe(false);
    const [inst] = await fx.showJson();
    expect(inst!.backups.map((b) => [b.id, b.status])).toEqual([[id, 'OK']]);

    const restored = await restoreAndStart(id, 'resume-full');
    try {
      expect(await bigDigest(restored)).toEqual(expected);
      expect((await restored.query<{ n: string }>("SELECT count(*)::text AS n FROM big WHERE pad = 'changed'"))[0]!.n).toBe('100');
      expect((await restored.pgbenchInvariant()).ok).toBe(true);
    } finally {
      await restored.destroy();
    }
  });

  let failedId: string;

  it('a failed backup keeps the files its journal names and removes the rest', async () => {
    const attempt = await startWaitingAttempt('FULL', 8);
    failedId = attempt.id;
    // While it waits: a dead writer's temporary and a file no journal line names.
    const tmp = `${storedFile(attempt.id, bigPath)}.tmp.999999999.abcdef`;
    const stray = storedFile(attempt.id, 'stray-file');
    await writeFile(tmp, 'left by a writer that is gone');
    await writeFile(stray, 'not journalled');
    const code = await attempt.exited;
    expect(code).toBe(3);
    expect(attempt.stderr()).toMatch(/ERROR: WAL segment \w+ .*did not reach the archive/);
    expect(attempt.stderr()).toMatch(new RegExp(`backup ${attempt.id} failed; the \\d+ files it stored are kept: the next FULL backup resumes it \\(or run backup --resume\\), or free the space with pgkeep delete --instance main -i ${attempt.id}`));
    expect(existsSync(tmp)).toBe(false);
    expect(existsSync(stray)).toBe(false);
    const journalled = await journalPaths(attempt.id);
    expect(journalled.length).toBeGreaterThan(0);
    expect((await listFiles(join(backupDir(attempt.id), 'data'))).sort()).toEqual((await journalStoredFiles(attempt.id)).sort());
    const [inst] = await fx.showJson();
    expect(inst!.backups.find((b) => b.id === attempt.id)?.status).toBe('ERROR');
  });

  it('--no-resume starts afresh and leaves the ERROR backup; --resume without a fitting backup fails', async () => {
    const other = await fx.run(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--resume', '--compress-algorithm', 'lz4', '--no-validate']);
    expect(other.code).toBe(3);
    expect(other.stderr).toMatch(new RegExp(`ERROR: interrupted backup ${failedId} cannot be resumed: it was compressed with zstd level 1, this backup uses lz4`));

    const fresh = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--no-resume', '--no-validate']);
    expect(fresh.stderr).not.toContain('resuming');
    expect(fresh.stderr).not.toContain('reused');
    const [inst] = await fx.showJson();
    expect(inst!.backups.find((b) => b.id === failedId)?.status).toBe('ERROR');
    expect(inst!.backups.find((b) => b.id === backupIdOf(fresh))?.status).toBe('DONE');

    const none = await fx.run(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '--resume']);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/^ERROR: there is no interrupted DELTA backup of instance main on parent \w+ to resume$/m);
    expect(none.stderr).toMatch(/^HINT: run the backup without --resume/m);
    await fx.ok(['delete', '--instance', 'main', '-i', failedId]);
  });

  it('resumes a DELTA backup killed with -9 and restores to the source data', async () => {
    const bench = cluster.startPgbench({ clients: 2 });
    await sleep(1500);
    await bench.stop();
    await cluster.query("UPDATE big SET pad = 'delta' WHERE id > 899000");
    const attempt = await startWaitingAttempt('DELTA', 120);
    expect(await journalPaths(attempt.id)).toContain(accountsPath);
    await killAttempt(attempt);
    const oldAccounts = await stat(storedFile(attempt.id, accountsPath));

    await cluster.query("UPDATE big SET pad = 'after' WHERE id BETWEEN 500000 AND 500100");
    const expected = await bigDigest(cluster);
    const r = await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--resume'], { env: { PGKEEP_DEBUG: '1' } });
    const id = backupIdOf(r);
    expect(r.stderr).toContain(`resuming interrupted backup ${attempt.id}`);
    expect(Number(/(\d+) files \(\d+ bytes\) reused/.exec(r.stderr)?.[1])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(new RegExp(`backup ${id} OK`));
    // pgbench_accounts' page delta, unchanged since the attempt, is the attempt's file.
    expect((await stat(storedFile(id, accountsPath))).ino, r.stderr).toBe(oldAccounts.ino);
    expect(existsSync(backupDir(attempt.id))).toBe(false);
    // Read only now: reading sets hint bits, which with checksums rewrites pages under a new LSN.
    const invariant = await cluster.pgbenchInvariant();

    const restored = await restoreAndStart(id, 'resume-delta');
    try {
      expect(await bigDigest(restored)).toEqual(expected);
      const inv = await restored.pgbenchInvariant();
      expect(inv.ok).toBe(true);
      expect(inv.delta).toBe(invariant.delta);
    } finally {
      await restored.destroy();
    }
  });
});

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const path = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listFiles(root, path)));
    else out.push(path);
  }
  return out;
}
