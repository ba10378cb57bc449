import { describe, expect, it } from 'vitest';
import type { BackupRecord } from '../../src/core/backup-types.js';
import { chooseBackupForTarget, followsTimeline } from '../../src/core/choose-backup-for-target.js';
import { parseLsn } from '../../src/core/lsn.js';
import { parseRecoveryTarget, type RecoveryTarget } from '../../src/core/recovery-settings.js';
import { parseTimelineHistory, type TimelinePath } from '../../src/core/timeline-history.js';

function backup(id: string, over: Partial<BackupRecord>): BackupRecord {
  return {
    id, instance: 'main', mode: 'FULL', status: 'OK', parentId: null, timeline: 1, startLsn: 0n, stopLsn: 0n,
    startTime: new Date(0), endTime: new Date(0), recoveryTime: null, recoveryXid: null, dataBytes: 0, storedBytes: 0,
    pgdataBytes: 0, walBytes: 0, compressAlg: 'none', compressLevel: 0, stream: false, serverVersion: '17.0',
    serverVersionNum: 170000, programVersion: '0', note: null, systemIdentifier: '1', blockSize: 8192,
    walSegSize: 16777216, checksumsEnabled: true, ownerPid: null, ownerHost: null, changeSource: null, error: null,
    metrics: null, generation: 0, ...over,
  };
}

const t = (s: string) => new Date(`2026-01-01T${s}Z`);

// Oldest to newest: A, B, C (all timeline 1).
const A = backup('A', { startTime: t('10:00:00'), endTime: t('10:01:00'), recoveryTime: t('10:00:30'), recoveryXid: '700', startLsn: parseLsn('0/2000028'), stopLsn: parseLsn('0/2000200') });
const B = backup('B', { startTime: t('11:00:00'), endTime: t('11:01:00'), recoveryTime: null, recoveryXid: null, startLsn: parseLsn('0/5000028'), stopLsn: parseLsn('0/5000200') });
const C = backup('C', { startTime: t('12:00:00'), endTime: t('12:01:00'), recoveryTime: t('12:00:40'), recoveryXid: '900', startLsn: parseLsn('0/9000028'), stopLsn: parseLsn('0/9000200'), stream: true });
const BAD = backup('BAD', { status: 'CORRUPT', startTime: t('13:00:00'), endTime: t('13:01:00'), recoveryTime: t('13:00:10'), recoveryXid: '950', stopLsn: parseLsn('0/A000000') });
const ALL = [A, B, C, BAD];

describe('choosing the backup for a recovery target', () => {
  const cases: { name: string; target: RecoveryTarget; want: string | undefined }[] = [
    { name: 'no target: the newest OK', target: { kind: 'none' }, want: 'C' },
    { name: 'latest: the newest OK', target: { kind: 'latest' }, want: 'C' },
    { name: 'immediate: the newest OK', target: { kind: 'immediate' }, want: 'C' },
    { name: 'a restore point: the newest OK', target: { kind: 'name', name: 'rp' }, want: 'C' },
    { name: 'time after the last commit of C', target: parseRecoveryTarget({ time: '2026-01-01 12:00:40+00' }), want: 'C' },
    { name: 'time just before the last commit of C', target: parseRecoveryTarget({ time: '2026-01-01 12:00:39.999+00' }), want: 'B' },
    { name: 'time within B, whose recovery time is unknown: its end time counts', target: parseRecoveryTarget({ time: '2026-01-01 11:00:59+00' }), want: 'A' },
    { name: 'time at B\'s end', target: parseRecoveryTarget({ time: '2026-01-01 11:01:00+00' }), want: 'B' },
    { name: 'time before every backup', target: parseRecoveryTarget({ time: '2026-01-01 09:00:00+00' }), want: undefined },
    { name: 'lsn at C\'s stop', target: { kind: 'lsn', lsn: parseLsn('0/9000200') }, want: 'C' },
    { name: 'lsn inside C', target: { kind: 'lsn', lsn: parseLsn('0/9000100') }, want: 'B' },
    { name: 'lsn before A ends', target: { kind: 'lsn', lsn: parseLsn('0/2000100') }, want: undefined },
    { name: 'xid after C\'s last commit', target: { kind: 'xid', xid: 901n }, want: 'C' },
    { name: 'xid of C\'s last commit: C is too late, B has no xid', target: { kind: 'xid', xid: 900n }, want: 'A' },
    { name: 'xid with an epoch: compared on its low 32 bits', target: { kind: 'xid', xid: (1n << 32n) + 800n }, want: 'A' },
    { name: 'xid before every backup', target: { kind: 'xid', xid: 5n }, want: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(chooseBackupForTarget(ALL, c.target)?.id).toBe(c.want);
    });
  }

  it('skips backups that are not on the history of the timeline recovery follows', () => {
    // Timeline 2 branched from 1 at 0/6000000: C (stop 0/9000200 on timeline 1) is not on its history.
    const histories = new Map<number, TimelinePath>([[2, parseTimelineHistory(2, '1\t0/6000000\tno recovery target specified\n')]]);
    const latest = { kind: 'latest' } as const;
    expect(chooseBackupForTarget(ALL, latest, { request: undefined, histories })?.id).toBe('B');
    expect(chooseBackupForTarget(ALL, latest, { request: 'current', histories })?.id).toBe('C');
    // A --stream backup restored without a target replays only its own WAL: timelines do not matter.
    expect(chooseBackupForTarget(ALL, { kind: 'none' }, { request: undefined, histories })?.id).toBe('C');
    expect(chooseBackupForTarget([A, B], { kind: 'none' }, { request: undefined, histories })?.id).toBe('B');
    const onTwo = backup('D', { timeline: 2, startTime: t('14:00:00'), startLsn: parseLsn('0/7000028'), stopLsn: parseLsn('0/7000100') });
    expect(chooseBackupForTarget([...ALL, onTwo], latest, { request: undefined, histories })?.id).toBe('D');
    expect(chooseBackupForTarget([...ALL, onTwo], latest, { request: '1', histories })?.id).toBe('C');
  });

  it('knows which restores follow the archive', () => {
    expect(followsTimeline({ kind: 'none' }, true)).toBe(false);
    expect(followsTimeline({ kind: 'none' }, false)).toBe(true);
    expect(followsTimeline({ kind: 'immediate' }, false)).toBe(false);
    expect(followsTimeline({ kind: 'latest' }, true)).toBe(true);
  });
});
