// The WAL archive end to end: PostgreSQL's archive_command runs `pgkeep archive-push` (as the
// postgres user, like every pgkeep command here, so that the repository is theirs), backups
// without --stream wait for their WAL in the archive, and restores replay from it through
// `pgkeep archive-get`, to the end of the archive or to a point in time.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGKEEP_BIN, spawnPgkeep } from '../helpers/cli.js';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, postgresRunner } from './pgkeep-fixture.js';

describe.each([15, 17] as PgMajor[])('WAL archive and point-in-time restore on PostgreSQL %i', (major) => {
  let repo: string;
  let source: TestCluster;
  const others: TestCluster[] = [];
  const runner = postgresRunner(() => repo);
  const { pgkeep, ok } = runner;
  const switchWal = () => runner.switchWal(source);

  beforeAll(async () => {
    repo = await archiveRepoDir('walrepo');
    source = await createArchivingInstance(ok, repo, { major, name: `wal${major}`, settings: { archive_timeout: 0 } });
    await ok(['set-config', '--instance', 'main', '--compress-algorithm', 'zstd']);
    await source.query('CREATE TABLE stamps (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  async function restoreAndStart(args: string[]): Promise<TestCluster> {
    const dest = join(await makeTempDir('walrestore', { owner: 'postgres' }), 'data');
    // --archive-mode off: the restored copies must not archive into the source's archive.
    await ok(['restore', '--instance', 'main', '-D', dest, '--archive-mode', 'off', ...args]);
    const c = await TestCluster.adopt(dest, { major, name: `walrestored${major}` });
    others.push(c);
    return c;
  }

  it('archives segments through archive_command, and serves them back byte for byte', async () => {
    const name = await switchWal();
    const dir = await makeTempDir('walget', { owner: 'postgres' });
    const r = await ok(['archive-get', '--instance', 'main', '--wal-file-path', join(dir, 'seg'), '--wal-file-name', name]);
    expect(r.stderr).toBe('');
    const got = await readFile(join(dir, 'seg'));
    expect(got.length).toBe(Number((await source.query<{ s: string }>("SELECT setting AS s FROM pg_settings WHERE name = 'wal_segment_size'"))[0]!.s));
    // Stored compressed: the archive file is smaller than the segment.
    const stored = execFileSync('stat', ['-c', '%s', join(repo, 'instances', 'main', 'wal', name)], { encoding: 'utf8' });
    expect(Number(stored)).toBeLessThan(got.length);
    // A file that is not in the archive: exit 1 without a word (recovery asks for such files).
    const missing = await pgkeep(['archive-get', '--instance', 'main', '--wal-file-path', join(dir, 'x'), '--wal-file-name', 'FFFFFFFF00000000000000FF']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('');
  });

  it('fails, leaving nothing, when the destination takes only part of the segment (a short write)', async () => {
    const name = await switchWal();
    const dir = await makeTempDir('walshort', { owner: 'postgres' });
    const dest = join(dir, name);
    const segSize = Number((await source.query<{ s: string }>("SELECT setting AS s FROM pg_settings WHERE name = 'wal_segment_size'"))[0]!.s);
    // A file-size limit inside the segment's last 1 MiB chunk, off the chunk boundary: that
    // chunk's write stores only part of it (Node ignores SIGXFSZ), without an error of its own.
    const limit = segSize - 3 * 131072;
    const r = spawnSync('prlimit', [`--fsize=${limit}`, '--', process.execPath, PGKEEP_BIN, 'archive-get', '--instance', 'main', '--wal-file-path', dest, '--wal-file-name', name], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', PGKEEP_REPO: repo },
    });
    expect(r.status, r.stdout + r.stderr).not.toBe(0);
    expect(r.stderr).toContain(dest);
    expect(r.stderr).toMatch(/EFBIG|too large/);
    expect(r.stderr.trim().split('\n').filter((l) => /^error/i.test(l))).toHaveLength(1);
    // Neither the segment, short, nor its temporary file is left where recovery would look.
    expect(await readdir(dir)).toEqual([]);
  });

  it('accepts the same file twice, refuses different content and segments of another cluster', async () => {
    const name = await switchWal();
    const dir = await makeTempDir('walpush', { owner: 'postgres' });
    const copy = join(dir, name);
    await ok(['archive-get', '--instance', 'main', '--wal-file-path', copy, '--wal-file-name', name]);
    await ok(['archive-push', '--instance', 'main', '--wal-file-path', copy, '--wal-file-name', name]);
    const bytes = await readFile(copy);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    await writeFile(copy, bytes);
    const refused = await pgkeep(['archive-push', '--instance', 'main', '--wal-file-path', copy, '--wal-file-name', name]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/already holds a different/);
    // A segment whose long header names another system identifier.
    bytes.writeBigUInt64LE(12345n, 24);
    await writeFile(copy, bytes);
    const other = await pgkeep(['archive-push', '--instance', 'main', '--wal-file-path', copy, '--wal-file-name', 'FFFFFFFF0000000000000001']);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/belongs to system 12345/);
  });

  it('never leaves a partial file that archive-get would serve when archive-push is killed', async () => {
    const name = await switchWal();
    const dir = await makeTempDir('walkill', { owner: 'postgres' });
    const copy = join(dir, name);
    await ok(['archive-get', '--instance', 'main', '--wal-file-path', copy, '--wal-file-name', name]);
    const original = await readFile(copy);
    for (let i = 0; i < 6; i++) {
      const target = `FFFFFFF${i}0000000000000001`;
      const child = spawnPgkeep(['archive-push', '--instance', 'main', '--wal-file-path', copy, '--wal-file-name', target, '--overwrite'], { asPostgres: true, env: { PGKEEP_REPO: repo } });
      // Listen from the start: a quick push may end before the kill, and 'close' is not replayed.
      const closed = new Promise((r) => child.on('close', r));
      await new Promise((r) => setTimeout(r, 20 + i * 40));
      child.kill('SIGKILL');
      await closed;
      const out = join(dir, `got${i}`);
      const r = await pgkeep(['archive-get', '--instance', 'main', '--wal-file-path', out, '--wal-file-name', target]);
      if (r.code === 0) expect((await readFile(out)).equals(original)).toBe(true);
      else expect(r.code).toBe(1);
    }
  });

  it('takes a backup without --stream once its WAL is archived, and restores to the end of the archive', async () => {
    await source.query('INSERT INTO stamps (id) VALUES (1)');
    const id = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2']));
    const [inst] = JSON.parse((await ok(['show', '--format', 'json'])).stdout) as { backups: { id: string; stream: boolean; status: string }[] }[];
    const b = inst!.backups.find((x) => x.id === id)!;
    expect(b.stream).toBe(false);
    expect(b.status).toBe('OK');
    await source.query('INSERT INTO stamps (id) VALUES (2)');
    await switchWal();
    const c = await restoreAndStart(['-i', id]);
    // Row 2 came after the backup: only replaying the archive brings it.
    expect((await c.query<{ id: number }>('SELECT id FROM stamps ORDER BY id')).map((r) => r.id)).toEqual([1, 2]);
    expect(await readFile(join(c.pgdata, 'postgresql.auto.conf'), 'utf8')).toContain("archive_mode = 'off'");
    await c.stop();
  });

  it('restores to a point in time: by LSN, by time, by transaction id and by restore point', async () => {
    const id = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    const mark = async (n: number) => {
      await source.query(`INSERT INTO stamps (id) VALUES (${n})`);
      const [r] = await source.query<{ lsn: string; at: Date; xid: string }>(`SELECT pg_current_wal_lsn()::text AS lsn, (SELECT at FROM stamps WHERE id = ${n}) AS at, (SELECT xmin::text FROM stamps WHERE id = ${n}) AS xid`);
      await switchWal();
      return r!;
    };
    const m10 = await mark(10);
    await new Promise((r) => setTimeout(r, 50));
    const m11 = await mark(11);
    await source.query("SELECT pg_create_restore_point('before-12')");
    const m12 = await mark(12);
    await switchWal();
    const ids = async (c: TestCluster) => (await c.query<{ id: number }>('SELECT id FROM stamps WHERE id >= 10 ORDER BY id')).map((r) => r.id);

    const byLsn = await restoreAndStart(['-i', id, '--recovery-target-lsn', m10.lsn]);
    expect(await ids(byLsn)).toEqual([10]);
    await byLsn.destroy();

    const between = new Date((m10.at.getTime() + m11.at.getTime()) / 2).toISOString();
    const byTime = await restoreAndStart(['-i', id, '--recovery-target-time', between]);
    expect(await ids(byTime)).toEqual([10]);
    await byTime.destroy();

    const byXid = await restoreAndStart(['-i', id, '--recovery-target-xid', m11.xid]);
    expect(await ids(byXid)).toEqual([10, 11]);
    await byXid.destroy();

    const byName = await restoreAndStart(['-i', id, '--recovery-target-name', 'before-12']);
    expect(await ids(byName)).toEqual([10, 11]);
    await byName.destroy();
    expect(m12.lsn).toBeTruthy();
  });
});
