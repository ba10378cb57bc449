import { describe, expect, it } from 'vitest';
import type { BackupMode, BackupStatus } from '../../src/core/backup-types.js';
import { walFileName } from '../../src/core/lsn.js';
import { planRetention, planWalRetention, walFilesToRemove, type RetentionBackup, type RetentionPolicy } from '../../src/core/retention.js';
import { parseTimelineHistory, type TimelinePath } from '../../src/core/timeline-history.js';
import { parseExpireTime, parseTtl } from '../../src/app/retention/pin-backup.js';

const NOW = new Date('2026-06-30T12:00:00Z');
const DAY = 24 * 3600 * 1000;
const SEG = 16 * 1024 * 1024;

/** A backup started `daysAgo` days before NOW, recovering 10 minutes later; LSN grows with time. */
function b(id: string, daysAgo: number, mode: BackupMode = 'FULL', parentId: string | null = null, over: Partial<RetentionBackup> = {}): RetentionBackup {
  const startTime = new Date(NOW.getTime() - daysAgo * DAY);
  const seg = BigInt(Math.round(1000 - daysAgo * 10));
  return {
    id, mode, parentId, status: 'OK' as BackupStatus, timeline: 1,
    startLsn: seg * BigInt(SEG) + 0x28n, stopLsn: seg * BigInt(SEG) + 0x1000n,
    startTime, endTime: new Date(startTime.getTime() + 600_000), recoveryTime: new Date(startTime.getTime() + 600_000),
    stream: false, expireTime: null, ...over,
  };
}

const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ redundancy: 0, windowDays: 0, walDepth: 0, ...p });

/** "id:action" for every backup, newest first. */
function actions(backups: RetentionBackup[], p: Partial<RetentionPolicy>, mergeExpired = false): string[] {
  return planRetention(backups, policy(p), NOW, { mergeExpired }).decisions.map((d) => `${d.id}:${d.action}`);
}

// Two chains, oldest first: F1 <- D1 <- D2 (20..18 days ago), F3 <- D3 (10..9 days ago), F5 <- D5 (2..1 days ago).
const F1 = b('F1', 20);
const D1 = b('D1', 19, 'DELTA', 'F1');
const D2 = b('D2', 18, 'DELTA', 'D1');
const F3 = b('F3', 10);
const D3 = b('D3', 9, 'DELTA', 'F3');
const F5 = b('F5', 2);
const D5 = b('D5', 1, 'PAGE', 'F5');
const CHAINS = [F1, D1, D2, F3, D3, F5, D5];

describe('retention: which backups stay', () => {
  const cases: { name: string; backups: RetentionBackup[]; policy: Partial<RetentionPolicy>; merge?: boolean; want: string[] }[] = [
    {
      name: 'no policy: everything stays',
      backups: CHAINS, policy: {},
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'redundancy 1: the newest chain',
      backups: CHAINS, policy: { redundancy: 1 },
      want: ['D5:keep', 'F5:keep', 'D3:delete', 'F3:delete', 'D2:delete', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'redundancy 2: two chains',
      backups: CHAINS, policy: { redundancy: 2 },
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:delete', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'redundancy above the number of FULL backups: everything stays',
      backups: CHAINS, policy: { redundancy: 5 },
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'window 5 days: the newest backup recovering to 5 days ago (D3) and its chain',
      backups: CHAINS, policy: { windowDays: 5 },
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:delete', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'window 15 days: D2, whose point is before the window start, anchors it, with its whole chain',
      backups: CHAINS, policy: { windowDays: 15 },
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'window 1 day: D5 recovers to 1 day ago only 10 minutes after: F5 anchors it',
      backups: CHAINS, policy: { windowDays: 1 },
      want: ['D5:keep', 'F5:keep', 'D3:delete', 'F3:delete', 'D2:delete', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'window longer than the history: everything stays',
      backups: CHAINS, policy: { windowDays: 60 },
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'both: a backup either policy keeps stays (window 5 is wider than redundancy 1)',
      backups: CHAINS, policy: { redundancy: 1, windowDays: 5 },
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:delete', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'both: redundancy 3 is wider than window 1',
      backups: CHAINS, policy: { redundancy: 3, windowDays: 1 },
      want: ['D5:keep', 'F5:keep', 'D3:keep', 'F3:keep', 'D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'a pinned incremental keeps its ancestors',
      backups: [F1, D1, { ...D2, expireTime: new Date(NOW.getTime() + DAY) }, F3, D3, F5, D5], policy: { redundancy: 1 },
      want: ['D5:keep', 'F5:keep', 'D3:delete', 'F3:delete', 'D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'a pin that has passed keeps nothing',
      backups: [F1, D1, { ...D2, expireTime: new Date(NOW.getTime() - 1000) }, F3, D3, F5, D5], policy: { redundancy: 1 },
      want: ['D5:keep', 'F5:keep', 'D3:delete', 'F3:delete', 'D2:delete', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'a pinned FULL stays, its expired children do not',
      backups: [{ ...F1, expireTime: new Date(NOW.getTime() + DAY) }, D1, D2, F5], policy: { redundancy: 1 },
      want: ['F5:keep', 'D2:delete', 'D1:delete', 'F1:keep'],
    },
    {
      name: 'an incremental kept by the window holds its FULL outside the window',
      backups: [F1, D1, D2, F5], policy: { windowDays: 18.5 },
      want: ['F5:keep', 'D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'ERROR and CORRUPT FULL backups do not count for redundancy, and it does not keep them',
      backups: [F1, b('E2', 15, 'FULL', null, { status: 'ERROR' }), F3, b('C4', 5, 'FULL', null, { status: 'CORRUPT' }), F5],
      policy: { redundancy: 2 },
      want: ['F5:keep', 'C4:delete', 'F3:keep', 'E2:delete', 'F1:delete'],
    },
    {
      name: 'a CORRUPT FULL backup inside the window stays',
      backups: [F1, b('C4', 5, 'FULL', null, { status: 'CORRUPT' }), F5],
      policy: { redundancy: 1, windowDays: 7 },
      want: ['F5:keep', 'C4:keep', 'F1:keep'],
    },
    {
      name: 'redundancy goes by chains: an incremental taken later on an older chain expires with it',
      backups: [F1, F3, b('D4', 5, 'DELTA', 'F1'), F5],
      policy: { redundancy: 2 },
      want: ['F5:keep', 'D4:delete', 'F3:keep', 'F1:delete'],
    },
    {
      name: 'an ERROR incremental keeps no ancestor: it goes with the expired FULL it was taken on',
      backups: [F1, F3, b('E4', 5, 'DELTA', 'F1', { status: 'ERROR' }), F5], policy: { windowDays: 7 },
      want: ['F5:keep', 'E4:delete', 'F3:keep', 'F1:delete'],
    },
    {
      name: 'an ORPHAN whose chain stays, stays',
      backups: [F3, b('C4', 5, 'DELTA', 'F3', { status: 'CORRUPT' }), b('O5', 4, 'DELTA', 'C4', { status: 'ORPHAN' }), F5], policy: { redundancy: 2 },
      want: ['F5:keep', 'O5:keep', 'C4:keep', 'F3:keep'],
    },
    {
      name: 'a RUNNING backup and its chain stay, whatever the policy',
      backups: [F1, b('R2', 0.01, 'DELTA', 'F1', { status: 'RUNNING', stopLsn: null, endTime: null, recoveryTime: null }), F5].sort((x, y) => x.startTime.getTime() - y.startTime.getTime()),
      policy: { redundancy: 1 },
      want: ['R2:keep', 'F5:keep', 'F1:keep'],
    },
    {
      name: 'the only valid FULL is old: redundancy 1 keeps its chain; a newer ERROR FULL goes',
      backups: [F1, D1, b('E3', 10, 'FULL', null, { status: 'ERROR' })], policy: { redundancy: 1 },
      want: ['E3:delete', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'merge-expired: the window anchor D2 absorbs its expired chain',
      backups: [F1, D1, D2, b('D4', 5, 'DELTA', 'D2')], policy: { windowDays: 10 }, merge: true,
      want: ['D4:keep', 'D2:merge', 'D1:merged', 'F1:merged'],
    },
    {
      name: 'merge-expired with branches: both kept increments merge; the shared FULL is merged into both',
      backups: [F1, D1, b('X2', 18.5, 'DELTA', 'F1'), D2].sort((x, y) => x.startTime.getTime() - y.startTime.getTime()), policy: { windowDays: 18.3 }, merge: true,
      want: ['D2:merge', 'X2:merge', 'D1:merged', 'F1:merged'],
    },
    {
      name: 'merge-expired does not merge over a pinned ancestor',
      backups: [{ ...F1, expireTime: new Date(NOW.getTime() + DAY) }, D1, D2], policy: { windowDays: 17.99 }, merge: true,
      want: ['D2:keep', 'D1:keep', 'F1:keep'],
    },
    {
      name: 'merge-expired does not merge an ERROR backup: its expired chain goes',
      backups: [F1, D1, b('E2', 1, 'DELTA', 'D1', { status: 'ERROR' }), F5].sort((x, y) => x.startTime.getTime() - y.startTime.getTime()),
      policy: { redundancy: 1 }, merge: true,
      want: ['E2:delete', 'F5:keep', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'merge-expired with nothing expired below a kept backup: nothing to merge',
      backups: CHAINS, policy: { redundancy: 1 }, merge: true,
      want: ['D5:keep', 'F5:keep', 'D3:delete', 'F3:delete', 'D2:delete', 'D1:delete', 'F1:delete'],
    },
    {
      name: 'merge-expired: a RUNNING child of an expired ancestor keeps it; the merge still absorbs it',
      backups: [F1, D1, D2, b('R3', 0.01, 'DELTA', 'D1', { status: 'RUNNING', stopLsn: null })].sort((x, y) => x.startTime.getTime() - y.startTime.getTime()),
      policy: { windowDays: 17.99 }, merge: true,
      want: ['R3:keep', 'D2:merge', 'D1:keep', 'F1:keep'],
    },
  ];
  it.each(cases)('$name', ({ backups, policy: p, merge, want }) => {
    expect(actions(backups, p, merge)).toEqual(want);
  });

  it('says why, for each backup', () => {
    const plan = planRetention(CHAINS, policy({ redundancy: 1 }), NOW, { mergeExpired: false });
    const reason = (id: string) => plan.decisions.find((d) => d.id === id)!.reason;
    expect(reason('F5')).toBe('valid FULL backup 1 of redundancy 1');
    expect(reason('D5')).toBe('in the chain of F5, valid FULL backup 1 of redundancy 1');
    expect(reason('D3')).toBe('expired (redundancy 1: not in the chain of F5, the newest valid FULL backup)');
    const win = planRetention([F1, D1, D2, F5], policy({ windowDays: 17.99 }), NOW, { mergeExpired: false });
    expect(win.decisions.find((d) => d.id === 'D1')!.reason).toBe('needed by D2');
    expect(win.decisions.find((d) => d.id === 'D2')!.reason).toMatch(/^the newest backup that recovers to .*, the start of the 17.99-day window$/);
    expect(win.decisions.find((d) => d.id === 'F5')!.reason).toBe('within the 17.99-day window');
    expect(planRetention(CHAINS, policy({}), NOW, { mergeExpired: false }).policySet).toBe(false);
  });

  it('lists a merge target\'s chain and what each merged backup goes into', () => {
    const plan = planRetention([F1, D1, D2, b('D4', 5, 'DELTA', 'D2')], policy({ windowDays: 10 }), NOW, { mergeExpired: true });
    expect(plan.decisions.find((d) => d.id === 'D2')!.related).toEqual(['D1', 'F1']);
    expect(plan.decisions.find((d) => d.id === 'F1')!.related).toEqual(['D2']);
  });
});

describe('retention: which WAL stays', () => {
  const lsn = (seg: number, off = 0x28) => BigInt(seg) * BigInt(SEG) + BigInt(off);
  const at = (id: string, seg: number, over: Partial<RetentionBackup> = {}) =>
    b(id, 100 - seg, 'FULL', null, { startLsn: lsn(seg), stopLsn: lsn(seg + 1, 0x100), ...over });
  const names = (tli: number, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => walFileName(tli, BigInt(from + i), SEG));
  const removed = (kept: RetentionBackup[], depth: number, files: string[], histories: ReadonlyMap<number, TimelinePath> = new Map()) => {
    const tlis = new Set(files.filter((n) => !n.endsWith('.history')).map((n) => Number.parseInt(n.slice(0, 8), 16)));
    return walFilesToRemove(files, planWalRetention(kept, depth, tlis, histories), SEG);
  };

  it('keeps everything from the oldest kept backup\'s start segment on', () => {
    const files = [...names(1, 1, 12), `${walFileName(1, 2n, SEG)}.00000028.backup`, `${walFileName(1, 5n, SEG)}.00000028.backup`];
    expect(removed([at('A', 5), at('B', 9)], 0, files)).toEqual([...names(1, 1, 4), `${walFileName(1, 2n, SEG)}.00000028.backup`].sort());
  });

  it('wal-depth 1: only the newest backup keeps continuous WAL; older ones keep their own start-to-stop WAL unless --stream', () => {
    const files = names(1, 1, 20);
    const got = removed([at('A', 3), at('S', 6, { stream: true }), at('B', 10), at('C', 15)], 1, files);
    // A keeps 3..4 (start to stop), S carries its WAL, B keeps 10..11, C keeps 15 on.
    expect(got).toEqual([...names(1, 1, 2), ...names(1, 5, 9), ...names(1, 12, 14)].sort());
  });

  it('wal-depth 2 keeps continuous WAL from the second newest', () => {
    expect(removed([at('A', 3), at('B', 10), at('C', 15)], 2, names(1, 1, 20))).toEqual([...names(1, 1, 2), ...names(1, 5, 9)].sort());
  });

  it('no kept backup (or only invalid ones): no WAL goes', () => {
    expect(removed([], 0, names(1, 1, 5))).toEqual([]);
    expect(removed([at('E', 4, { status: 'ERROR' })], 0, names(1, 1, 5))).toEqual([]);
  });

  it('timelines: a later timeline branching after a kept backup stays; one that only precedes goes; history files never go', () => {
    // Timeline 2 branched from 1 at segment 8; timeline 3 from 2 at segment 12.
    const h2 = parseTimelineHistory(2, `1\t0/${(8 * SEG + 0x100).toString(16).toUpperCase()}\tno recovery target specified\n`);
    const h3 = parseTimelineHistory(3, `1\t0/${(8 * SEG + 0x100).toString(16).toUpperCase()}\tx\n2\t0/${(12 * SEG + 0x100).toString(16).toUpperCase()}\ty\n`);
    const histories = new Map([[2, h2], [3, h3]]);
    const files = [...names(1, 1, 8), `${walFileName(1, 8n, SEG)}.partial`, ...names(2, 8, 12), ...names(3, 12, 14), '00000002.history', '00000003.history'];
    // A on timeline 1 at segment 5: everything from there on, on 1, 2 and 3.
    expect(removed([at('A', 5)], 0, files, histories)).toEqual(names(1, 1, 4));
    // Only B on timeline 3 at segment 13: timelines 1 and 2 precede it and go entirely (history files stay).
    const onlyB = [at('B', 13, { timeline: 3 })];
    expect(removed(onlyB, 0, files, histories)).toEqual([...names(1, 1, 8), `${walFileName(1, 8n, SEG)}.partial`, ...names(2, 8, 12), walFileName(3, 12n, SEG)].sort());
    // A backup on timeline 1 after the branch point: timeline 2 and 3 do not follow from it, and are no ancestors: left alone.
    expect(removed([at('C', 8, { startLsn: lsn(8, 0x200), stopLsn: lsn(8, 0x300) })], 0, files, histories)).toEqual(names(1, 1, 7));
  });

  it('a timeline no kept backup reaches and that precedes none is left alone', () => {
    const files = [...names(1, 1, 6), ...names(4, 3, 5)];
    expect(removed([at('A', 5)], 0, files)).toEqual(names(1, 1, 4));
  });
});

describe('set-backup: --ttl and --expire-time', () => {
  it.each([
    ['30d', 30 * 86400], ['12h', 43200], ['5min', 300], ['90', 90], ['10 s', 10], ['0', 0],
  ])('--ttl %s is %i seconds', (text, seconds) => {
    expect(parseTtl(text)).toBe(seconds);
  });
  it.each(['3w', '-1', '1.5d', 'soon'])('--ttl %s is refused', (text) => {
    expect(() => parseTtl(text)).toThrow(/invalid --ttl/);
  });
  it.each([
    ['2027-01-31 12:00:00+00', '2027-01-31T12:00:00.000Z'],
    ['2027-01-31 12:00:00', '2027-01-31T12:00:00.000Z'],
    ['2027-01-31T12:00:00Z', '2027-01-31T12:00:00.000Z'],
    ['2027-01-31', '2027-01-31T00:00:00.000Z'],
    ['2027-01-31 12:00:00+02:00', '2027-01-31T10:00:00.000Z'],
    ['2027-01-31 12:00:00-0500', '2027-01-31T17:00:00.000Z'],
  ])('--expire-time %s is %s', (text, iso) => {
    expect(parseExpireTime(text).toISOString()).toBe(iso);
  });
  it('--expire-time refuses what is not a time', () => {
    expect(() => parseExpireTime('next tuesday')).toThrow(/invalid --expire-time/);
  });
});
