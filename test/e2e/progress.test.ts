// --progress and the end-of-command figures (PostgreSQL 15, pgbench scale 1). Without a terminal,
// progress is plain lines on stderr, the last one per phase at its end; every command ends with
// an INFO line of figures; a backup keeps the same figures in its metrics (show --format json),
// and `show -i` prints them as a readable line. A restore started afterwards holds the data.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { figuresFromMetrics, figuresLine } from '../../src/cli/progress-display.js';
import { TestCluster } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture, type ShowBackup } from './pgkeep-fixture.js';

/** "progress: 12/12 files, ..." lines of a phase ("progress (wal): ..." for a named one). */
function progressLines(stderr: string, phase?: string): string[] {
  const label = phase ? `progress (${phase}): ` : 'progress: ';
  return stderr.split('\n').filter((l) => l.startsWith(label));
}

/** The end-of-command figures line. */
function figures(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith('INFO: read '));
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

const FIGURES = /^INFO: read [\d.]+ [kMGT]?B, written [\d.]+ [kMGT]?B, stored [\d.]+ [kMGT]?B, ratio \d+\.\d\d, [\d.]+ MB\/s over \d\d:\d\d:\d\d, peak RSS [\d.]+ [kMG]?B$/;

describe('--progress and command figures', () => {
  let cluster: TestCluster;
  let fx: RepoFixture;
  let restored: TestCluster | undefined;
  let fullId: string;

  beforeAll(async () => {
    cluster = await TestCluster.create({ major: 15, name: 'progress' });
    await cluster.pgbenchInit(1);
    fx = await newRepo(cluster);
  });

  afterAll(async () => {
    await restored?.destroy();
    await cluster?.destroy();
  });

  it('backup --progress prints the final progress lines and figures, and keeps them in metrics', async () => {
    const r = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'zstd', '--progress']);
    fullId = backupIdOf(r);

    // The data directory's phase ends complete: every file, every byte, ETA 0.
    const last = progressLines(r.stderr).at(-1);
    expect(last, r.stderr).toMatch(/^progress: (\d+)\/\1 files, ([\d.]+)\/\2 [kMG]?B, [\d.]+ MB\/s, ETA 00:00:00$/);
    expect(progressLines(r.stderr, 'wal').at(-1), r.stderr).toMatch(/^progress \(wal\): (\d+)\/\1 files/);
    expect(progressLines(r.stderr, `validate ${fullId}`).at(-1), r.stderr).toMatch(/: (\d+)\/\1 files/);
    // stdout keeps its one result line
    expect(r.stdout.trim().split('\n')).toHaveLength(1);

    const [inst] = await fx.showJson();
    const b = inst!.backups.find((x) => x.id === fullId)!;
    const m = b.metrics as Record<string, number>;
    for (const k of ['files', 'durationMs', 'pagesRead', 'peakRssBytes', 'bytesRead', 'bytesWritten', 'bytesStored', 'compressionRatio', 'throughputMBps']) {
      expect(typeof m[k], k).toBe('number');
    }
    expect(m.bytesRead).toBeGreaterThanOrEqual(Number(b.data_bytes));
    expect(m.bytesStored).toBe(Number(b.stored_bytes));
    expect(m.bytesWritten).toBe(Number(b.stored_bytes));
    expect(m.compressionRatio).toBeGreaterThan(1);
    expect(m.throughputMBps).toBeGreaterThan(0);
    expect(m.peakRssBytes).toBeGreaterThan(10 * 1024 * 1024);

    // The figures line is those very metrics.
    const line = figures(r.stderr);
    expect(line).toMatch(FIGURES);
    expect(line).toBe(`INFO: ${figuresLine(figuresFromMetrics(m)!)}`);

    const details = await fx.ok(['show', '-i', fullId]);
    expect(details.stdout).toContain(`figures = ${figuresLine(figuresFromMetrics(m)!)}`);
    expect(details.stdout).toMatch(/^metrics\.compressionRatio = [\d.]+$/m);
  });

  it('restore --progress prints its progress and figures, and the restored server holds the data', async () => {
    const before = await cluster.tableDigest();
    const dest = join(await makeTempDir('restore'), 'data');
    const r = await fx.ok(['restore', '--instance', 'main', '-D', dest, '-i', fullId, '-j', '2', '--progress']);
    expect(progressLines(r.stderr).at(-1), r.stderr).toMatch(/^progress: (\d+)\/\1 files, ([\d.]+)\/\2 [kMG]?B, .*ETA 00:00:00$/);
    const line = figures(r.stderr);
    expect(line).toMatch(FIGURES);
    // Read: the stored (zstd) bytes; written: the files' content, more than was read.
    const written = /restored into .* \((\d+) files, (\d+) bytes\)/.exec(r.stdout);
    expect(written, r.stdout).not.toBeNull();
    const ratio = Number(/ratio ([\d.]+)/.exec(line)![1]);
    expect(ratio).toBeGreaterThan(1);

    restored = await TestCluster.adopt(dest, { major: 15, name: 'progress-restored' });
    expect(await restored.tableDigest()).toEqual(before);
    await restored.stop();
  });

  it('validate, export and merge print their figures; merge records its own in metrics', async () => {
    const v = await fx.ok(['validate', '-i', fullId, '--progress']);
    expect(progressLines(v.stderr, `validate ${fullId}`).at(-1), v.stderr).toMatch(/: (\d+)\/\1 files/);
    expect(figures(v.stderr)).toMatch(FIGURES);

    const tar = join(await makeTempDir('export'), 'full.tar');
    const e = await fx.ok(['export', '-i', fullId, '--instance', 'main', '-o', tar, '--progress']);
    expect(progressLines(e.stderr).at(-1), e.stderr).toMatch(/^progress: (\d+)\/\1 files/);
    expect(figures(e.stderr)).toMatch(FIGURES);

    await cluster.query("UPDATE pgbench_accounts SET filler = 'changed' WHERE aid % 50 = 0");
    const deltaId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '--no-validate']));
    const g = await fx.ok(['merge', '--instance', 'main', '-i', deltaId, '--progress']);
    expect(progressLines(g.stderr, 'merge').at(-1), g.stderr).toMatch(/: (\d+)\/\1 files/);
    expect(figures(g.stderr)).toMatch(FIGURES);
    const [inst] = await fx.showJson();
    const merged = inst!.backups.find((x: ShowBackup) => x.id === deltaId)!;
    const m = merged.metrics as Record<string, number>;
    expect(merged.backup_mode).toBe('FULL');
    expect(m.mergeBytesWritten).toBeGreaterThan(0);
    expect(m.mergeBytesRead).toBeGreaterThan(0);
  });
});
