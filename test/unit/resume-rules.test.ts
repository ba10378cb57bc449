import { describe, expect, it } from 'vitest';
import type { BackupRecord } from '../../src/core/backup-types.js';
import { mayReuseStorage, pageUnchangedSince, resumeCandidates, resumeIncompatibility, type AttemptFacts, type ResumeAttempt } from '../../src/core/resume-rules.js';

const old: ResumeAttempt = {
  backupId: 'B1', instance: 'main', mode: 'DELTA', parentId: 'P1', startLsn: 0x5000000n, timeline: 1,
  systemIdentifier: '7', compressAlg: 'zstd', compressLevel: 3, blockSize: 8192, resumedFrom: null,
};
const facts: AttemptFacts = { mode: 'DELTA', parentId: 'P1', timeline: 1, systemIdentifier: '7', compressAlg: 'zstd', compressLevel: 3, blockSize: 8192 };

function rec(id: string): BackupRecord {
  return { id, mode: 'FULL', status: 'ERROR', parentId: null, startTime: new Date(Number(id.slice(1)) * 1000) } as Partial<BackupRecord> as BackupRecord;
}

describe('resume rules', () => {
  it('fits an attempt with the same facts', () => {
    expect(resumeIncompatibility(old, facts)).toBeUndefined();
  });

  it.each<[string, Partial<AttemptFacts>, RegExp]>([
    ['system', { systemIdentifier: '8' }, /system 7.*system 8/],
    ['mode', { mode: 'FULL' }, /DELTA backup, this one is FULL/],
    ['timeline', { timeline: 2 }, /timeline 1.*timeline 2/],
    ['parent', { parentId: 'P2' }, /parent is P1.*P2/],
    ['compression', { compressAlg: 'lz4' }, /zstd level 3.*lz4/],
    ['level', { compressLevel: 5 }, /level 3.*level 5/],
    ['block size', { blockSize: 16384 }, /block size/],
  ])('refuses another %s', (_what, change, why) => {
    expect(resumeIncompatibility(old, { ...facts, ...change })).toMatch(why);
  });

  it('lists ERROR backups of the mode (and parent), newest first', () => {
    const backups = [
      { ...rec('B1') },
      { ...rec('B3') },
      { ...rec('B2'), status: 'OK' as const },
      { ...rec('B4'), mode: 'DELTA' as const, parentId: 'P1' },
      { ...rec('B5'), mode: 'DELTA' as const, parentId: 'P2' },
    ];
    expect(resumeCandidates(backups, 'FULL', null).map((b) => b.id)).toEqual(['B3', 'B1']);
    expect(resumeCandidates(backups, 'DELTA', 'P1').map((b) => b.id)).toEqual(['B4']);
    expect(resumeCandidates(backups, 'PAGE', 'P1')).toEqual([]);
  });

  it('reuses whole files in every mode, page deltas only where the whole file is read', () => {
    expect(mayReuseStorage('FULL', 'full')).toBe(true);
    expect(mayReuseStorage('DELTA', 'delta')).toBe(true);
    expect(mayReuseStorage('PAGE', 'full')).toBe(true);
    expect(mayReuseStorage('PAGE', 'delta')).toBe(false);
    expect(mayReuseStorage('PTRACK', 'delta')).toBe(false);
    expect(mayReuseStorage('DELTA', 'parent')).toBe(false);
    expect(mayReuseStorage('FULL', 'none')).toBe(false);
  });

  it('takes a page as unchanged only below the attempt start, a zero page included', () => {
    expect(pageUnchangedSince(0x4ffffffn, 0x5000000n)).toBe(true);
    expect(pageUnchangedSince(0x5000000n, 0x5000000n)).toBe(false);
    expect(pageUnchangedSince(0x6000000n, 0x5000000n)).toBe(false);
    // A zero page says nothing: the content checksum decides.
    expect(pageUnchangedSince(0n, 0x5000000n)).toBe(true);
  });
});
