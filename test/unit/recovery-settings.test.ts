import { describe, expect, it } from 'vitest';
import { parseRecoveryTarget, recoveryConfigLines, recoverySignalFile } from '../../src/core/recovery-settings.js';

describe('recovery settings', () => {
  it('writes a time target in the form PostgreSQL accepts, in UTC', () => {
    const lines = recoveryConfigLines({ time: '2026-11-21T20:04:47.058Z', restoreCommand: 'get %f %p' }, false)!;
    expect(lines).toContain("recovery_target_time = '2026-11-21 20:04:47.058+00'");
    expect(lines).toContain("restore_command = 'get %f %p'");
    expect(lines).toContain("recovery_target_action = 'promote'");
  });

  it('converts a time with an offset to UTC', () => {
    const lines = recoveryConfigLines({ time: '2026-11-21 12:00:00+02' }, false)!;
    expect(lines).toContain("recovery_target_time = '2026-11-21 10:00:00.000+00'");
  });

  it('needs no configuration for a --stream backup without a target, and an archive for one without --stream', () => {
    expect(recoveryConfigLines({}, false)).toBeUndefined();
    const archive = recoveryConfigLines({ restoreCommand: 'x' }, true)!;
    expect(archive.some((l) => l.startsWith('recovery_target'))).toBe(false);
    expect(archive).toContain("restore_command = 'x'");
  });

  it('refuses two targets, and malformed ones', () => {
    expect(() => parseRecoveryTarget({ lsn: '0/1', xid: '5' })).toThrow(/more than one recovery target/);
    expect(() => parseRecoveryTarget({ time: 'yesterday-ish' })).toThrow(/invalid recovery target time/);
    expect(() => parseRecoveryTarget({ xid: 'abc' })).toThrow(/invalid recovery target xid/);
    expect(() => parseRecoveryTarget({ lsn: 'nope' })).toThrow(/invalid LSN/);
  });

  it('quotes names and keeps inclusive and timeline settings', () => {
    const lines = recoveryConfigLines({ name: "it's", inclusive: false, timeline: 'latest' }, false)!;
    expect(lines).toContain("recovery_target_name = 'it''s'");
    expect(lines).toContain("recovery_target_timeline = 'latest'");
    const xid = recoveryConfigLines({ xid: '1234', inclusive: false }, false)!;
    expect(xid).toContain('recovery_target_inclusive = off');
  });

  it('writes a standby its restore_command, primary_conninfo and slot, quoted, even from a --stream backup; no target, no action', () => {
    const req = { restoreCommand: 'pgkeep archive-get', standby: { primaryConninfo: "host=primary user=rep password='x'", primarySlotName: 'standby_1' }, action: 'promote' as const };
    expect(recoveryConfigLines(req, false)).toEqual([
      '# standby settings written by pgkeep restore --as-standby',
      "restore_command = 'pgkeep archive-get'",
      "primary_conninfo = 'host=primary user=rep password=''x'''",
      "primary_slot_name = 'standby_1'",
    ]);
    expect(recoveryConfigLines({ standby: {}, timeline: 'latest' }, false)).toEqual(['# standby settings written by pgkeep restore --as-standby', "recovery_target_timeline = 'latest'"]);
    expect(recoverySignalFile(req)).toBe('standby.signal');
    expect(recoverySignalFile({})).toBe('recovery.signal');
  });

  it('refuses a recovery target for a standby', () => {
    for (const target of [{ time: '2026-11-21 12:00:00+00' }, { target: 'immediate' as const }, { lsn: '0/3000000' }, { name: 'rp' }, { xid: '700' }]) {
      expect(() => parseRecoveryTarget({ ...target, standby: {} })).toThrow(/a standby follows its primary and has no recovery target/);
    }
  });
});
