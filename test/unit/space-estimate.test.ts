import { describe, expect, it } from 'vitest';
import type { BackupMode, CompressAlg } from '../../src/core/backup-types.js';
import { estimateBackupSpace, type SizedBackup } from '../../src/core/space-estimate.js';

const MB = 2 ** 20;
const SEG = 16 * MB;

function backup(id: string, day: number, mode: BackupMode, storedMb: number, over: Partial<SizedBackup> = {}): SizedBackup {
  return { id, mode, status: 'OK', compressAlg: 'zstd' as CompressAlg, pgdataBytes: 1000 * MB, storedBytes: storedMb * MB, startTime: new Date(Date.UTC(2026, 0, day)), ...over };
}

const estimate = (mode: BackupMode, history: SizedBackup[], compressAlg: CompressAlg = 'zstd') =>
  estimateBackupSpace({ mode, compressAlg, pgdataBytes: 2000 * MB, walSegSize: SEG, history });

describe('estimateBackupSpace', () => {
  it('assumes nothing compresses when there is no history, plus a fifth and two WAL segments', () => {
    const e = estimate('FULL', []);
    expect(e.bytes).toBe(Math.ceil(2000 * MB * 1.2) + 2 * SEG);
    expect(e.basis).toContain('uncompressed');
  });

  it('uses the stored ratio of the newest finished backup of the same mode and compression', () => {
    const history = [backup('A', 1, 'FULL', 500), backup('B', 3, 'FULL', 100), backup('C', 2, 'FULL', 900)];
    const e = estimate('FULL', history);
    expect(e.bytes).toBe(Math.ceil(2000 * MB * 0.1 * 1.2) + 2 * SEG);
    expect(e.basis).toContain('backup B');
  });

  it('ignores failed backups and other compression algorithms', () => {
    const history = [backup('A', 1, 'FULL', 100), backup('E', 5, 'FULL', 1, { status: 'ERROR' }), backup('N', 6, 'FULL', 1, { compressAlg: 'none' })];
    expect(estimate('FULL', history).basis).toContain('backup A');
    expect(estimate('FULL', history, 'lz4').basis).toContain('uncompressed');
  });

  it('bounds an incremental backup by a FULL when no backup of its mode finished yet', () => {
    const full = backup('F', 1, 'FULL', 200);
    expect(estimate('DELTA', [full]).bytes).toBe(Math.ceil(2000 * MB * 0.2 * 1.2) + 2 * SEG);
    const delta = backup('D', 2, 'DELTA', 10);
    expect(estimate('DELTA', [full, delta]).bytes).toBe(Math.ceil(2000 * MB * 0.01 * 1.2) + 2 * SEG);
  });

  it('never assumes a backup stores more than the data directory', () => {
    const odd = backup('X', 1, 'FULL', 3000);
    expect(estimate('FULL', [odd]).bytes).toBe(Math.ceil(2000 * MB * 1.2) + 2 * SEG);
  });
});
