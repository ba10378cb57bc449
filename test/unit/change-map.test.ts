import { describe, expect, it } from 'vitest';
import { changeMapOf } from '../../src/core/change-map.js';

describe('changeMapOf', () => {
  it('sorts and merges blocks per file, and lets all win', () => {
    const m = changeMapOf('wal', [
      ['base/5/1', [9, 3, 3]],
      ['base/5/1', [1]],
      ['base/5/2', [4]],
      ['base/5/2', 'all'],
      ['base/5/2', [7]],
    ]);
    expect(m.changes('base/5/1')).toEqual([1, 3, 9]);
    expect(m.changes('base/5/2')).toBe('all');
    expect(m.changes('base/5/3')).toBeUndefined();
    expect(m.source).toBe('wal');
  });
});
