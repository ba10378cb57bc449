import { describe, expect, it } from 'vitest';
import {
  assertSafeRelativePath,
  backupControlKey,
  backupDataKey,
  backupJournalKey,
  backupKey,
  instanceConfigKey,
  instanceKey,
  manifestKey,
  validateInstanceName,
  walArchiveKey,
} from '../../src/repository/layout.js';

describe('repository layout', () => {
  it('builds keys', () => {
    expect(instanceKey('main')).toBe('instances/main');
    expect(instanceConfigKey('main')).toBe('instances/main/instance.json');
    expect(backupKey('main', 'T1')).toBe('instances/main/backups/T1');
    expect(backupControlKey('main', 'T1')).toBe('instances/main/backups/T1/backup.json');
    expect(manifestKey('main', 'T1')).toBe('instances/main/backups/T1/manifest.jsonl');
    expect(backupDataKey('main', 'T1', 'base/5/1259')).toBe('instances/main/backups/T1/data/base/5/1259');
    expect(backupJournalKey('main', 'T1')).toBe('instances/main/backups/T1/resume.jsonl');
    expect(walArchiveKey('main')).toBe('instances/main/wal');
  });

  it.each(['../x', '/abs', 'a//b', 'a/../b', './a', 'a/', '', 'a\0b', '..'])('rejects unsafe path %j', (p) => {
    expect(() => assertSafeRelativePath(p)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => backupDataKey('main', 'T1', p)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it.each(['base/5/1259', 'pg_wal/000000010000000000000001', 'a..b/c', '.hidden/x'])('accepts %j', (p) => {
    expect(() => assertSafeRelativePath(p)).not.toThrow();
  });

  it.each(['', '.hidden', 'a/b', 'x'.repeat(65), 'sp ace', '..'])('rejects instance name %j', (n) => {
    expect(() => validateInstanceName(n)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', hint: expect.stringContaining('64') }));
  });

  it.each(['main', 'pg-17_a.b', 'x'.repeat(64), '9'])('accepts instance name %j', (n) => {
    expect(() => validateInstanceName(n)).not.toThrow();
  });

  it('refuses a backup id that would leave the backups directory', () => {
    expect(() => backupKey('main', '..')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => backupKey('main', 'a/b')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
