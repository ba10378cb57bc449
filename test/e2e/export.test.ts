// `pgkeep export`: a DELTA backup (with a tablespace) streamed as one tar archive, unpacked by
// GNU tar into an empty directory, starts and holds exactly the data of the backup's point, on
// every major under test; the same archive goes to standard output with pg_control last; a
// missing backup or a corrupt stored file leaves no archive behind.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { lstat, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnPgkeep } from '../helpers/cli.js';
import { TestCluster, invariantText, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

const execFileAsync = promisify(execFile);
const MAJORS: PgMajor[] = [15, 17];

interface Piped {
  code: number;
  stderr: string;
  tarCode: number;
  tarStdout: string;
  tarStderr: string;
  sha256: string;
}

describe.each(MAJORS)('export on PostgreSQL %i', (major) => {
  let source: TestCluster;
  let fx: RepoFixture;
  const adopted: TestCluster[] = [];
  let deltaId = '';
  let archive = '';

  beforeAll(async () => {
    source = await TestCluster.create({ major, name: `export${major}` });
    await source.pgbenchInit(4);
    fx = await newRepo(source);
  });

  afterAll(async () => {
    for (const c of adopted) await c.destroy();
    await source?.destroy();
  });

  /** pgkeep export ... -o - piped into `tar <tarArgs>`, with the archive's sha256 on the side. */
  async function exportPiped(args: string[], tarArgs: string[]): Promise<Piped> {
    const child = spawnPgkeep(['export', '--instance', 'main', ...args], { env: { PGKEEP_REPO: fx.repo } });
    const tar = spawn('tar', tarArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
    const hash = createHash('sha256');
    let stderr = '';
    let tarStdout = '';
    let tarStderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    tar.stdout.setEncoding('utf8').on('data', (d: string) => (tarStdout += d));
    tar.stderr.setEncoding('utf8').on('data', (d: string) => (tarStderr += d));
    tar.stdin.on('error', () => undefined); // tar may stop reading a broken archive early
    child.stdout!.on('data', (d: Buffer) => hash.update(d));
    child.stdout!.pipe(tar.stdin);
    const [[code], [tarCode]] = await Promise.all([once(child, 'close'), once(tar, 'close')]);
    return { code: code as number, stderr, tarCode: tarCode as number, tarStdout, tarStderr, sha256: hash.digest('hex') };
  }

  it('exports a DELTA backup that GNU tar unpacks into a directory PostgreSQL starts on', async () => {
    const spc = `exts${major}`;
    await source.createTablespace(spc);
    await source.query(`CREATE TABLE in_ts TABLESPACE ${spc} AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 5000) g`);
    const fullId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'zstd']));

    // Changes between the two backups: pgbench writes, a new table, updated tables (one in the
    // tablespace). Then a digest with nothing running, and the DELTA right after it.
    const bench = source.startPgbench({ clients: 2 });
    try {
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await bench.stop();
    }
    await source.query('CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 20000) g');
    await source.query("UPDATE pgbench_accounts SET filler = 'changed' WHERE aid % 97 = 0");
    await source.query("UPDATE in_ts SET t = 'updated' WHERE id % 10 = 0");
    const before = await source.tableDigest();
    expect(Object.keys(before)).toEqual(expect.arrayContaining(['public.fresh', 'public.in_ts', 'public.pgbench_accounts']));
    deltaId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '--compress-algorithm', 'lz4']));
    const [inst] = await fx.showJson();
    const delta = inst!.backups.find((b) => b.id === deltaId)!;
    expect(delta.backup_mode).toBe('DELTA');
    expect(delta.parent_backup_id).toBe(fullId);
    expect(delta.status).toBe('OK');

    const outDir = await makeTempDir('export');
    archive = join(outDir, 'delta.tar');
    const r = await fx.ok(['export', '--instance', 'main', '-i', deltaId, '-o', archive, '-j', '3']);
    expect(r.stdout).toContain(`backup ${deltaId} exported`);
    expect(await readdir(outDir)).toEqual(['delta.tar']); // the temporary name was renamed away
    expect((await stat(archive)).mode & 0o777).toBe(0o600);

    const list = (await execFileAsync('tar', ['-tf', archive], { maxBuffer: 64 << 20 })).stdout.trim().split('\n');
    expect(list.at(-1)).toBe('global/pg_control');
    expect(list).toContain('backup_label');
    expect(list).not.toContain('tablespace_map');
    expect(list.some((p) => /^pg_wal\/[0-9A-F]{24}$/.test(p))).toBe(true);
    for (const d of ['pg_wal/archive_status/', ...(major >= 17 ? ['pg_wal/summaries/'] : [])]) expect(list).toContain(d);
    // Every directory comes before anything inside it.
    const seen = new Set<string>();
    for (const p of list) {
      const parent = p.replace(/\/$/, '').split('/').slice(0, -1).join('/');
      if (parent) expect(seen.has(`${parent}/`), `${p} before its directory`).toBe(true);
      seen.add(p);
    }

    // Unpack as root with GNU tar's defaults (--same-owner), into an empty directory.
    const dest = join(await makeTempDir('unpacked'), 'data');
    await mkdir(dest, { mode: 0o700 });
    await execFileAsync('tar', ['-xf', archive, '-C', dest]);
    const sourceUid = (await stat(join(source.pgdata, 'PG_VERSION'))).uid;
    for (const p of ['PG_VERSION', 'global/pg_control', 'base', 'pg_wal', 'pg_wal/archive_status']) expect((await stat(join(dest, p))).uid, p).toBe(sourceUid);
    expect((await stat(join(dest, 'global/pg_control'))).mode & 0o777).toBe(0o600);
    const oid = (await source.query<{ oid: string }>(`SELECT oid::text AS oid FROM pg_tablespace WHERE spcname = '${spc}'`))[0]!.oid;
    const tsDir = await lstat(join(dest, 'pg_tblspc', oid));
    expect(tsDir.isDirectory()).toBe(true); // a real directory, not a link to the source's location
    expect((await readdir(join(dest, 'pg_tblspc', oid))).some((n) => n.startsWith(`PG_${major}_`))).toBe(true);

    // Recovery refuses directories in pg_tblspc unless in-place tablespaces are allowed.
    expect(await readFile(join(dest, 'postgresql.auto.conf'), 'utf8')).toMatch(/^allow_in_place_tablespaces = on$/m);
    expect(await readFile(join(source.pgdata, 'postgresql.auto.conf'), 'utf8')).not.toContain('allow_in_place_tablespaces');

    const c = await TestCluster.adopt(dest, { major, name: `exported${major}` });
    adopted.push(c);
    expect(await c.tableDigest()).toEqual(before);
    const inv = await c.pgbenchInvariant();
    expect(inv.ok, invariantText(inv)).toBe(true);
    expect(inv.delta).not.toBe(0n); // pgbench did write before the DELTA
    const [loc] = await c.query<{ l: string }>(`SELECT pg_tablespace_location(oid) AS l FROM pg_tablespace WHERE spcname = '${spc}'`);
    expect(loc!.l).toBe(`pg_tblspc/${oid}`);
    // The tablespace is writable in place, too.
    await c.query(`INSERT INTO in_ts SELECT g, 'new' FROM generate_series(5001, 6000) g`);
    expect((await c.query<{ n: string }>('SELECT count(*) AS n FROM in_ts'))[0]!.n).toBe('6000');
    await c.amcheck();
    await c.stop();
    await c.checksumsCheck();
  });

  it('streams the same archive to standard output, pg_control last', async () => {
    expect(deltaId).not.toBe('');
    const p = await exportPiped(['-i', deltaId, '-o', '-', '-j', '2'], ['-t']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.tarCode, p.tarStderr).toBe(0);
    expect(p.stderr).toContain(`backup ${deltaId} exported`); // messages go to stderr
    const names = p.tarStdout.trim().split('\n');
    expect(names.at(-1)).toBe('global/pg_control');
    // Same entries, same bytes as the file export (and without -o at all, stdout is the default).
    const fileBytes = await readFile(archive);
    expect(p.sha256).toBe(createHash('sha256').update(fileBytes).digest('hex'));
    const q = await exportPiped(['-i', deltaId], ['-t']);
    expect(q.code, q.stderr).toBe(0);
    expect(q.sha256).toBe(p.sha256);
  });

  it('fails on a missing backup id with one error line, and writes nothing', async () => {
    const outDir = await makeTempDir('export-missing');
    const r = await fx.run(['export', '--instance', 'main', '-i', 'NOSUCH1', '-o', join(outDir, 'x.tar')]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR:'));
    expect(errors).toEqual(['ERROR: backup NOSUCH1 not found in instance "main"']);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await readdir(outDir)).toEqual([]);
  });

  it('stops on a corrupt stored file: no archive file, and a piped archive tar rejects', async () => {
    expect(deltaId).not.toBe('');
    // backup_label is stored whole by every backup; damage the DELTA's copy.
    const dataDir = join(fx.repo, 'instances', 'main', 'backups', deltaId, 'data');
    const stored = join(dataDir, (await readdir(dataDir)).find((n) => n.startsWith('backup_label'))!);
    const bytes = await readFile(stored);
    const middle = bytes.length >> 1;
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    await writeFile(stored, bytes);

    const outDir = await makeTempDir('export-corrupt');
    const r = await fx.run(['export', '--instance', 'main', '-i', deltaId, '-o', join(outDir, 'x.tar')]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/^ERROR: .*backup_label/m);
    expect(await readdir(outDir)).toEqual([]);

    // On a pipe the archive cannot be taken back, but it stops inside the bad entry, without an
    // end-of-archive marker, so tar fails instead of unpacking a wrong backup_label.
    const dest = await makeTempDir('unpacked-corrupt');
    const p = await exportPiped(['-i', deltaId], ['-x', '-C', dest]);
    expect(p.code).toBe(6);
    expect(p.tarCode, p.tarStderr).not.toBe(0);
    expect(p.tarStderr).toMatch(/Unexpected EOF/);
    await expect(stat(join(dest, 'global', 'pg_control'))).rejects.toThrow();
  });
});
