// `-j 2` runs backup copies, restore writes and validate checks on worker threads (docs/performance.md). With no
// writes between them, a backup taken with workers and one taken in-process store the same
// bytes; restores with and without workers are byte-identical and the restored server holds the
// source's tables; a corrupt stored file is reported through a worker as it is in-process.
// PGKEEP_DEBUG makes the pool say when threads run, so each test also proves the path it took,
// and the backup print its time line.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { relationDigests } from '../helpers/file-digests.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, readManifestFile, type RepoFixture } from './pgkeep-fixture.js';

const DEBUG = { env: { PGKEEP_DEBUG: '1' } };

/** A run's time line from its PGKEEP_DEBUG lines (src/debug.ts, debugPhase): each step and the ms since the process started at its end. */
function timeLine(stderr: string): { ms: number; phase: string }[] {
  return [...stderr.matchAll(/^DEBUG: (\d+\.\d) ms (.+)$/gm)].map((m) => ({ ms: Number(m[1]), phase: m[2]! }));
}

describe('parallel pipeline on PostgreSQL 15', () => {
  let source: TestCluster;
  let fx: RepoFixture;
  let threaded = '';
  let inProcess = '';
  const restored: TestCluster[] = [];

  beforeAll(async () => {
    // No autovacuum: nothing may change a relation file between the two backups.
    source = await TestCluster.create({ major: 15, name: 'parallel', settings: { autovacuum: 'off' } });
    await source.pgbenchInit(3);
    await source.query('CHECKPOINT');
    fx = await newRepo(source);
  });

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await source?.destroy();
  });

  const manifest = async (id: string) => (await readManifestFile(fx.repo, id)).files;

  it('stores the same bytes with worker threads as in-process', async () => {
    const a = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2'], DEBUG);
    expect(a.stderr).toMatch(/DEBUG: 1 worker thread\(s\) running copy-worker\.js/);
    // The backup's time line: each step as it ends, in order, in milliseconds since the process started.
    const phases = timeLine(a.stderr);
    expect(phases.map((p) => p.phase)).toEqual([
      'program loaded, repository and catalog open', 'connected and prepared (parent chosen, its manifest read)', 'backup started on the server (start checkpoint done)',
      'data directory walked', 'files copied', 'backup stopped on the server', 'WAL copied', 'backup sealed (manifest written, catalog saved)', 'backup validated',
    ]);
    expect(phases.map((p) => p.ms)).toEqual(phases.map((p) => p.ms).sort((x, y) => x - y));
    expect(phases[0]!.ms).toBeGreaterThan(0);
    threaded = backupIdOf(a);
    const b = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '1'], DEBUG);
    expect(b.stderr).not.toMatch(/worker thread/);
    inProcess = backupIdOf(b);

    // pgbench's tables and indexes: no query of a backup touches them (catalog pages may get hint
    // bits between two backups, so they are left out).
    const rows = await source.query<{ p: string }>("SELECT pg_relation_filepath(oid) AS p FROM pg_class WHERE relname LIKE 'pgbench_%'");
    const relations = rows.map((r) => r.p);
    expect(relations.length).toBe(7); // four tables, three primary keys
    const [ma, mb] = [await manifest(threaded), await manifest(inProcess)];
    for (const p of relations) {
      const [x, y] = [ma.get(p), mb.get(p)];
      expect(x && y, p).toBeTruthy();
      expect([x!.size, x!.storage, x!.storedSize, x!.storedChecksum, x!.checksum], p).toEqual([y!.size, y!.storage, y!.storedSize, y!.storedChecksum, y!.checksum]);
    }
  });

  it('restores byte-identical directories with and without workers, and the server holds the data', async () => {
    const before = await source.tableDigest();
    const withWorkers = join(await makeTempDir('par-j2'), 'data');
    const r = await fx.ok(['restore', '--instance', 'main', '-i', threaded, '-D', withWorkers, '-j', '2'], DEBUG);
    expect(r.stderr).toMatch(/worker thread\(s\) running restore-worker\.js/);
    // The restore's time line, as the backup's: each step as it ends, in order.
    const phases = timeLine(r.stderr);
    expect(phases.map((p) => p.phase)).toEqual([
      'program loaded, repository and catalog open', "backup chosen and its chain's manifests read (1 backup(s))", 'files planned, targets checked',
      'directories and links laid out', 'files written', 'recovery settings written, files synced', 'pg_control written', 'directories synced',
    ]);
    expect(phases.map((p) => p.ms)).toEqual(phases.map((p) => p.ms).sort((x, y) => x - y));
    const alone = join(await makeTempDir('par-j1'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', threaded, '-D', alone, '-j', '1']);
    expect(await relationDigests(withWorkers)).toEqual(await relationDigests(alone));

    const c = await TestCluster.adopt(withWorkers, { major: 15, name: 'par-restored' });
    restored.push(c);
    expect(await c.tableDigest()).toEqual(before);
    await c.stop();
  });

  it('reports a damaged file that a worker reads', async () => {
    // Restore hands files out largest first: the main thread takes the first, the worker the second.
    const m = await manifest(inProcess);
    const bySize = [...m.values()].filter((e) => e.storage === 'full' && !e.path.startsWith('pg_wal/')).sort((x, y) => y.size - x.size);
    const victim = bySize[1]!.path;
    const stored = join(fx.repo, 'instances', 'main', 'backups', inProcess, 'data', victim);
    const bytes = await readFile(stored);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    await writeFile(stored, bytes);

    const bad = await fx.run(['restore', '--instance', 'main', '-i', inProcess, '-D', join(await makeTempDir('par-bad'), 'data'), '-j', '2'], DEBUG);
    expect(bad.stderr).toMatch(/worker thread\(s\) running restore-worker\.js/);
    expect(bad.code, bad.stderr).toBe(6);
    expect(bad.stderr).toMatch(new RegExp(`^ERROR: .*${victim.replace(/[.]/g, '\\.')}`, 'm'));
    expect(bad.stderr).toMatch(/^HINT: run `pgkeep validate`/m);

    const check = await fx.run(['validate', '--instance', 'main', '-i', inProcess, '-j', '2'], DEBUG);
    expect(check.stderr).toMatch(/worker thread\(s\) running validate-worker\.js/);
    expect(check.code).toBe(6);
    expect(check.stderr).toContain(victim);
  });
});
