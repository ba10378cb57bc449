// archive-get --prefetch end to end: a restored server recovers through the archive with segments
// fetched ahead by the detached filler, and gets the same data; a prefetched copy is served only
// while the archive holds that very content; one filler at a time, a dead one's lock taken over;
// the filler stops at the end of the archive; the directory goes once recovery is over.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { runPgkeep } from '../helpers/cli.js';
import { sleep } from '../helpers/faults.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, postgresRunner } from './pgkeep-fixture.js';

describe.each([13, 15] as PgMajor[])('archive-get --prefetch on PostgreSQL %i', (major) => {
  let repo: string;
  let source: TestCluster;
  const others: TestCluster[] = [];
  const runner = postgresRunner(() => repo);
  const { ok } = runner;
  let backupId: string;
  /** Segments archived after the backup, each holding some of the rows. */
  const segments: string[] = [];

  beforeAll(async () => {
    repo = await archiveRepoDir('prefetchrepo');
    source = await createArchivingInstance(ok, repo, { major, name: `prefetch${major}`, settings: { archive_timeout: 0 } });
    await ok(['set-config', '--instance', 'main', '--compress-algorithm', 'zstd']);
    await source.query('CREATE TABLE rows (id int PRIMARY KEY, filler text NOT NULL)');
    // Without --stream: its restore replays the archive to its end, through restore_command.
    backupId = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL']));
    for (let i = 0; i < 10; i++) {
      await source.query(`INSERT INTO rows SELECT g, md5(g::text) FROM generate_series(${i * 1000 + 1}, ${(i + 1) * 1000}) g`);
      segments.push(await runner.switchWal(source));
    }
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  /** A directory named pg_wal, as restore_command's %p lives in, owned by postgres. */
  const newWalDir = async () => {
    const dir = join(await makeTempDir('prefetchwal', { owner: 'postgres' }), 'pg_wal');
    await mkdir(dir);
    execFileSync('chown', ['postgres:postgres', dir]);
    return dir;
  };
  /** archive-get as restore_command runs it, with PGKEEP_DEBUG: it says where the segment came from and when it starts a filler. */
  const get = (walDir: string, name: string, depth: number) =>
    runPgkeep(['archive-get', '--instance', 'main', '--wal-file-path', join(walDir, 'RECOVERYXLOG'), '--wal-file-name', name, '--prefetch', String(depth)], { asPostgres: true, env: { PGKEEP_REPO: repo, PGKEEP_DEBUG: '1' } });
  const withoutDebug = (stderr: string) => stderr.split('\n').filter((l) => l !== '' && !l.startsWith('DEBUG: ')).join('\n');
  const prefetched = async (walDir: string) => (await readdir(join(walDir, 'pgkeep-prefetch')).catch(() => [] as string[])).filter((e) => !e.startsWith('.')).sort();
  /**
   * The prefetched entries once the detached filler is done: waits (up to 20 s) until `count` are
   * there and no filler holds the lock; with `count` 0, until no lock a second after the call.
   */
  const settled = async (walDir: string, count: number) => {
    const lock = join(walDir, 'pgkeep-prefetch', '.lock');
    if (count === 0) await sleep(1000);
    for (let i = 0; i < 200 && (existsSync(lock) || (await prefetched(walDir)).length < count); i++) await sleep(100);
    expect(existsSync(lock)).toBe(false);
    return prefetched(walDir);
  };
  const archivedBytes = async (name: string, dir: string) => {
    const out = join(dir, `${name}.direct`);
    await ok(['archive-get', '--instance', 'main', '--wal-file-path', out, '--wal-file-name', name]);
    return readFile(out);
  };

  it('recovers through the archive with segments fetched ahead, and the restored data is the source\'s', async () => {
    const dest = join(await makeTempDir('prefetchdest', { owner: 'postgres' }), 'data');
    // Archiving stays on: the promoted copy pushes its timeline 2 history, which removes the directory.
    const r = await ok(['restore', '--instance', 'main', '-i', backupId, '-D', dest, '--archive-get-prefetch', '4']);
    expect(r.stdout).toContain(`backup ${backupId} restored`);
    const conf = await readFile(join(dest, 'postgresql.auto.conf'), 'utf8');
    expect(conf).toMatch(/restore_command = '.* archive-get .* --prefetch 4'/);
    // PGKEEP_DEBUG makes archive-get say in the server log where each segment came from.
    await writeFile(join(dest, 'postgresql.auto.conf'), conf.replace("restore_command = '", "restore_command = 'PGKEEP_DEBUG=1 "));
    const copy = await TestCluster.adopt(dest, { major, name: `prefetchcopy${major}` });
    others.push(copy);
    const [got] = await copy.query<{ n: string; sum: string }>('SELECT count(*) AS n, sum(id) AS sum FROM rows');
    const [want] = await source.query<{ n: string; sum: string }>('SELECT count(*) AS n, sum(id) AS sum FROM rows');
    expect(got).toEqual(want);
    expect(Number(got!.n)).toBe(10_000);

    const log = await copy.logTail(100_000);
    const fromPrefetch = segments.filter((s) => log.includes(`DEBUG: ${s} from the prefetch directory`));
    const fromArchive = segments.filter((s) => log.includes(`DEBUG: ${s} from the archive`));
    // Every segment came one way or the other; the filler started after the first served one
    // runs beside replay, so most come from it (a fast replay may overtake it now and then).
    // (Recovery may ask for a segment twice: at a timeline switch, the last one again.)
    expect([...new Set([...fromPrefetch, ...fromArchive])].sort()).toEqual(segments);
    expect(fromPrefetch.length, log).toBeGreaterThanOrEqual(segments.length / 2);

    // Promoted: its first push (the timeline 2 history file) removes the prefetch directory.
    await runner.waitArchived('00000002.history');
    const prefetchDir = join(dest, 'pg_wal', 'pgkeep-prefetch');
    for (let i = 0; i < 100 && existsSync(prefetchDir); i++) await sleep(100);
    expect(existsSync(prefetchDir)).toBe(false);
    await copy.stop();
  });

  it('serves a prefetched copy only while the archive holds that very content', async () => {
    const walDir = await newWalDir();
    const [first, second, third] = segments;
    await ok(['archive-get', '--instance', 'main', '--wal-file-path', join(walDir, 'RECOVERYXLOG'), '--wal-file-name', first!, '--prefetch', '2']);
    const held = await settled(walDir, 2);
    expect(held.map((e) => e.slice(0, 24))).toEqual([second, third]);

    // The archive's copy of the second segment is replaced by a different content (--overwrite).
    const scratch = await makeTempDir('prefetchalt', { owner: 'postgres' });
    const bytes = await archivedBytes(second!, scratch);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    const altered = join(scratch, second!);
    await writeFile(altered, bytes);
    execFileSync('chown', ['postgres:postgres', altered]);
    await ok(['archive-push', '--instance', 'main', '--wal-file-path', altered, '--wal-file-name', second!, '--overwrite']);

    const r = await runner.pgkeep(['archive-get', '--instance', 'main', '--wal-file-path', join(walDir, 'RECOVERYXLOG'), '--wal-file-name', second!, '--prefetch', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(join(walDir, 'RECOVERYXLOG'))).equals(bytes)).toBe(true);
    // The copy of the old content is gone with the segment served; the third is still there, and
    // the filler this call started adds the fourth. (Waiting for one entry raced that filler: the
    // third alone satisfied the wait before the filler took its lock.)
    const after = await settled(walDir, 2);
    expect(after.map((e) => e.slice(0, 24))).toEqual([third, segments[3]]);

    // Put the original back, so that the other tests read the archive as the server wrote it.
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    await writeFile(altered, bytes);
    await ok(['archive-push', '--instance', 'main', '--wal-file-path', altered, '--wal-file-name', second!, '--overwrite']);
  });

  it('starts no filler while a live one holds the lock, and takes over the lock of a dead one', async () => {
    const walDir = await newWalDir();
    const dir = join(walDir, 'pgkeep-prefetch');
    await mkdir(dir);
    // Alive: this test's own process (pgkeep, run as postgres, may not signal it: EPERM counts as alive).
    await writeFile(join(dir, '.lock'), String(process.pid));
    execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    const live = await get(walDir, segments[3]!, 3);
    expect(live.code).toBe(0);
    expect(live.stderr).not.toContain('prefetch filler started');
    await sleep(1000);
    expect(await prefetched(walDir)).toEqual([]);

    // Dead: a process that has exited. Its temporary file goes with its lock.
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    await writeFile(join(dir, '.lock'), dead);
    await writeFile(join(dir, `.${segments[4]}.${dead}.tmp`), 'partial');
    execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    const taken = await get(walDir, segments[3]!, 3);
    expect(taken.code).toBe(0);
    expect(taken.stderr).toContain(`DEBUG: prefetch filler started after ${segments[3]}`);
    const held = await settled(walDir, 3);
    expect(held.map((e) => e.slice(0, 24))).toEqual(segments.slice(4, 7));
    expect((await readdir(dir)).filter((e) => e.endsWith('.tmp'))).toEqual([]);
    // Each prefetched copy is the archive's content, byte for byte.
    const scratch = await makeTempDir('prefetchcmp', { owner: 'postgres' });
    for (const e of held) expect((await readFile(join(dir, e))).equals(await archivedBytes(e.slice(0, 24), scratch)), e).toBe(true);
  });

  it('stops at the end of the archive, and serves the rest from the prefetch directory', async () => {
    const walDir = await newWalDir();
    const last = segments.length - 1;
    const first = await get(walDir, segments[last - 2]!, 8);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain(`DEBUG: prefetch filler started after ${segments[last - 2]}`);
    // Only the two segments the archive holds after it, not the six beyond its end.
    expect((await settled(walDir, 2)).map((e) => e.slice(0, 24))).toEqual(segments.slice(last - 1));
    for (const s of segments.slice(last - 1)) {
      const r = await get(walDir, s, 8);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`DEBUG: ${s} from the prefetch directory`);
      // The archive holds nothing after what is held: no filler is started to find nothing.
      expect(r.stderr).not.toContain('prefetch filler started');
    }
    expect(await settled(walDir, 0)).toEqual([]);
    // A segment past the end: missing, exit 1, as without --prefetch.
    const past = await get(walDir, 'FFFFFFFF00000000000000FF', 8);
    expect(past.code).toBe(1);
    expect(withoutDebug(past.stderr)).toBe('');
  });

  it('is left alone by archive-push while recovery.signal or standby.signal is there, removed after', async () => {
    const walDir = await newWalDir();
    const dataDir = join(walDir, '..');
    expect((await get(walDir, segments[0]!, 2)).code).toBe(0);
    expect((await settled(walDir, 2)).length).toBe(2);
    // A copy of a segment in this pg_wal, pushed as archive_command pushes (already archived: a no-op).
    const seg = join(walDir, segments[0]!);
    await writeFile(seg, await archivedBytes(segments[0]!, await makeTempDir('prefetchpush', { owner: 'postgres' })));
    execFileSync('chown', ['postgres:postgres', seg]);
    const push = () => ok(['archive-push', '--instance', 'main', '--wal-file-path', seg, '--wal-file-name', segments[0]!]);
    for (const signal of ['standby.signal', 'recovery.signal']) {
      await writeFile(join(dataDir, signal), '');
      await push();
      expect(existsSync(join(walDir, 'pgkeep-prefetch')), signal).toBe(true);
      execFileSync('rm', [join(dataDir, signal)]);
    }
    await push();
    expect(existsSync(join(walDir, 'pgkeep-prefetch'))).toBe(false);
  });

  it('refuses a depth out of range, saying which', async () => {
    const walDir = await newWalDir();
    const r = await get(walDir, segments[0]!, 257);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/prefetch/);
    expect(existsSync(join(walDir, 'RECOVERYXLOG'))).toBe(false);
  });
});
