// Bad input gets a one-line error with a hint, a non-zero exit, and leaves the repository as it
// was: every case below snapshots the repository (files, sizes, show --format json) before and
// compares after.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGKEEP_BIN, runPgkeep, type PgkeepResult } from '../helpers/cli.js';
import { TestCluster } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { connectionArgs, newRepo, type RepoFixture } from './pgkeep-fixture.js';

/** What V8 itself prints first when `--jitless` turns WebAssembly off; pgkeep's lines follow it. */
const V8_NO_WASM_WARNING = 'Warning: disabling flag --expose_wasm';

async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const s = await stat(p);
      // The SQLite WAL and shm files change size on reads; the catalog is compared through show.
      if (/catalog\.sqlite-(wal|shm)$/.test(name)) continue;
      out.push(`${rel}${name}${s.isDirectory() ? '/' : ` ${s.size}`}`);
      if (s.isDirectory()) await walk(p, `${rel}${name}/`);
    }
  };
  await walk(dir, '');
  return out;
}

describe('bad input', () => {
  let cluster: TestCluster;
  let other: TestCluster;
  let fx: RepoFixture;
  let backupId: string;
  let before: { files: string[]; show: string };

  beforeAll(async () => {
    [cluster, other] = await Promise.all([TestCluster.create({ major: 15, name: 'bad' }), TestCluster.create({ major: 15, name: 'other' })]);
    fx = await newRepo(cluster);
    const r = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']);
    backupId = /^backup ([0-9A-Z]+) /m.exec(r.stdout)![1]!;
  });

  afterAll(async () => {
    await cluster?.destroy();
    await other?.destroy();
  });

  /** Runs a refused command: non-zero, ERROR first and a HINT, the repository unchanged; returns the run. */
  async function expectRefused(args: string[], message: RegExp, opts: Parameters<RepoFixture['run']>[1] = {}): Promise<PgkeepResult> {
    before = { files: await snapshot(fx.repo), show: (await fx.run(['show', '--format', 'json'])).stdout };
    const r = await fx.run(args, opts);
    expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).not.toBe(0);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('INFO:') && !l.startsWith('WARNING:') && !l.startsWith(V8_NO_WASM_WARNING));
    expect(lines[0]).toMatch(/^ERROR: /);
    expect(lines[0]).toMatch(message);
    expect(lines.some((l) => l.startsWith('HINT: '))).toBe(true);
    expect(await snapshot(fx.repo)).toEqual(before.files);
    expect((await fx.run(['show', '--format', 'json'])).stdout).toBe(before.show);
    return r;
  }

  it('refuses a data directory that does not exist', async () => {
    await expectRefused(['add-instance', '--instance', 'x', '-D', '/nonexistent/pgdata', ...connectionArgs(cluster)], /not a PostgreSQL data directory/);
  });

  it('refuses a data directory of another cluster than the server connected to', async () => {
    await expectRefused(['add-instance', '--instance', 'x', '-D', other.pgdata, ...connectionArgs(cluster)], /belongs to system \d+/);
    await fx.ok(['set-config', '--instance', 'main', '-D', other.pgdata]);
    await expectRefused(['backup', '--instance', 'main', '-b', 'FULL', '--stream'], /belongs to system \d+/);
    await fx.ok(['set-config', '--instance', 'main', '-D', cluster.pgdata]);
  });

  it('refuses a server that is down', async () => {
    await other.stop();
    try {
      await expectRefused(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-p', String(other.port), '-h', other.connection.host], /cannot connect to PostgreSQL/);
    } finally {
      await other.start();
    }
  });

  it('refuses wrong credentials', async () => {
    await cluster.query("CREATE ROLE pw_user LOGIN SUPERUSER PASSWORD 'right'");
    const hba = join(cluster.pgdata, 'pg_hba.conf');
    const original = await readFile(hba, 'utf8');
    await writeFile(hba, `local all pw_user scram-sha-256\n${original}`);
    await cluster.query('SELECT pg_reload_conf()');
    try {
      await expectRefused(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-U', 'pw_user'], /authentication failed/, { env: { PGPASSWORD: 'wrong' } });
    } finally {
      await writeFile(hba, original);
      await cluster.query('SELECT pg_reload_conf()');
    }
  });

  it('refuses a non-empty restore target', async () => {
    const dest = await makeTempDir('nonempty');
    await writeFile(join(dest, 'precious'), 'keep me');
    await expectRefused(['restore', '--instance', 'main', '-D', dest], /is not empty/);
    expect(await readdir(dest)).toEqual(['precious']);
  });

  it('fails a restore whose target takes only part of a file (a short write), leaving it unstartable', async () => {
    // A file-size limit three pages short of the backup's largest file: that file's last write
    // stores only part of its chunk (Node ignores SIGXFSZ) without an error of its own.
    const manifest = await readFile(join(fx.repo, 'instances', 'main', 'backups', backupId, 'manifest.jsonl'), 'utf8');
    const sizes = manifest.split('\n').filter((l) => l.includes('"path"')).map((l) => (JSON.parse(l) as { size?: number }).size ?? 0);
    const limit = Math.max(...sizes) - 3 * 8192;
    const dest = join(await makeTempDir('short'), 'data');
    before = { files: await snapshot(fx.repo), show: (await fx.run(['show', '--format', 'json'])).stdout };
    const r = spawnSync('prlimit', [`--fsize=${limit}`, '--', process.execPath, PGKEEP_BIN, 'restore', '--instance', 'main', '-i', backupId, '-D', dest], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', PGKEEP_REPO: fx.repo },
    });
    expect(r.status, r.stdout + r.stderr).not.toBe(0);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('INFO:') && !l.startsWith('WARNING:'));
    expect(lines[0]).toMatch(/^ERROR: could not write .*file-size limit/);
    expect(lines.some((l) => l.startsWith('HINT: '))).toBe(true);
    // pg_control is written last: without it the half-restored directory cannot be started.
    await expect(stat(join(dest, 'global', 'pg_control'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await snapshot(fx.repo)).toEqual(before.files);
    expect((await fx.run(['show', '--format', 'json'])).stdout).toBe(before.show);
  });

  it('refuses an unknown instance and an unknown backup id', async () => {
    await expectRefused(['backup', '--instance', 'nope', '-b', 'FULL', '--stream'], /instance "?nope"?/);
    await expectRefused(['restore', '--instance', 'main', '-D', join(await makeTempDir('r'), 'd'), '-i', 'ZZZZZZ'], /backup "?ZZZZZZ"?/);
    await expectRefused(['validate', '--instance', 'main', '-i', 'ZZZZZZ'], /backup "?ZZZZZZ"?/);
  });

  it('refuses to run on a Node.js without WebAssembly (node --jitless), for every command, before touching anything', async () => {
    // xxhash-wasm and the page checksum need it; without the check each command stopped on a
    // ReferenceError from inside a module.
    const fresh = join(await makeTempDir('jitless'), 'repo');
    const runs: [string[], Parameters<RepoFixture['run']>[1]][] = [
      [['backup', '--instance', 'main', '-b', 'FULL', '--stream'], { nodeFlags: ['--jitless'] }],
      [['show'], { env: { NODE_OPTIONS: '--jitless' } }],
      [['validate', '--instance', 'main'], { nodeFlags: ['--jitless'] }],
      [['archive-push', '--instance', 'main', '--wal-file-path', 'pg_wal/000000010000000000000001', '--wal-file-name', '000000010000000000000001'], { nodeFlags: ['--jitless'] }],
      [['init', '-B', fresh], { nodeFlags: ['--jitless'] }],
    ];
    for (const [args, opts] of runs) {
      const run = await expectRefused(args, /needs WebAssembly/, opts);
      expect(run.code).toBe(1);
      expect(run.stderr.trim().split('\n').filter((l) => !l.startsWith(V8_NO_WASM_WARNING))).toEqual([
        'ERROR: pgkeep needs WebAssembly, for its checksums, and this Node.js runs without it',
        'HINT: run node without --jitless (on its command line and in NODE_OPTIONS)',
      ]);
      expect(run.stdout).toBe('');
    }
    await expect(stat(fresh)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a backup without --stream until the WAL archive exists', async () => {
    await expectRefused(['backup', '--instance', 'main', '-b', 'FULL'], /--stream|archive/);
  });

  it('refuses a repository written by a newer format', async () => {
    const formatFile = join(fx.repo, 'pgkeep.repo');
    const original = await readFile(formatFile, 'utf8');
    await writeFile(formatFile, original.replace(/"version":\s*1/, '"version": 2'));
    try {
      const r = await fx.run(['show']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ERROR: .*version 2/);
      expect(r.stderr).toMatch(/HINT: .*upgrade/i);
    } finally {
      await writeFile(formatFile, original);
    }
  });

  it('refuses a repository path that is not writable', async () => {
    // As root every path is writable, so the case is played by the postgres user on a root-owned directory.
    const parent = await makeTempDir('ro');
    await chmod(parent, 0o755);
    const r = await runPgkeep(['init', '-B', join(parent, 'repo')], { asPostgres: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR: .*(permission denied|not writable)/i);
    expect(await readdir(parent)).toEqual([]);
  });

  it('refuses to init a non-empty directory that is not a repository', async () => {
    const dir = await makeTempDir('notrepo');
    await mkdir(join(dir, 'stuff'));
    const r = await runPgkeep(['init', '-B', dir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR: .*not empty/);
    expect(await readdir(dir)).toEqual(['stuff']);
  });

  it('keeps the repository private (directories 0700, files 0600) and writes no password anywhere', async () => {
    const secret = `pw-${process.pid}-${Date.now()}-never-stored`;
    const env = { PGPASSWORD: secret };
    const outputs: string[] = [];
    for (const args of [['backup', '--instance', 'main', '-b', 'DELTA', '--stream'], ['show', '-i', backupId, '--instance', 'main'], ['show-config', '--instance', 'main', '--format', 'json']]) {
      const r = await fx.ok(args, { env });
      outputs.push(r.stdout, r.stderr);
    }
    const loose: string[] = [];
    const leaks: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const name of await readdir(d)) {
        const p = join(d, name);
        const s = await stat(p);
        if (s.isDirectory()) {
          if ((s.mode & 0o777) !== 0o700) loose.push(`${p} ${(s.mode & 0o777).toString(8)}`);
          await walk(p);
        } else {
          if ((s.mode & 0o777) !== 0o600) loose.push(`${p} ${(s.mode & 0o777).toString(8)}`);
          if ((await readFile(p)).includes(secret)) leaks.push(p);
        }
      }
    };
    await walk(fx.repo);
    expect(loose).toEqual([]);
    expect(leaks).toEqual([]);
    expect(outputs.join('\n')).not.toContain(secret);
  });

  it('names the backup and the file when validation finds a corrupt file, and marks it CORRUPT', async () => {
    const dataDir = join(fx.repo, 'instances', 'main', 'backups', backupId, 'data');
    const victim = execFileSync('find', [join(dataDir, 'base'), '-type', 'f', '-size', '+16k'], { encoding: 'utf8' }).split('\n')[0]!;
    const bytes = await readFile(victim);
    bytes[8200] = bytes[8200]! ^ 0xff;
    await writeFile(victim, bytes);
    const r = await fx.run(['validate', '--instance', 'main', '-i', backupId]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain(backupId);
    expect(r.stderr).toContain(victim.slice(dataDir.length + 1));
    const [inst] = await fx.showJson();
    expect(inst!.backups.find((b) => b.id === backupId)!.status).toBe('CORRUPT');
    const restore = await fx.run(['restore', '--instance', 'main', '-D', join(await makeTempDir('r'), 'd'), '-i', backupId]);
    expect(restore.code).not.toBe(0);
    expect(restore.stderr).toMatch(/CORRUPT/);
  });
});
