// `show --archive` keeps long lists in a cell readable: the first and last items, and a count.
import { describe, expect, it } from 'vitest';
import { MAX_LISTED, shortList } from '../../src/cli/short-list.js';

describe('shortList', () => {
  it('lists up to MAX_LISTED items whole', () => {
    const ids = Array.from({ length: MAX_LISTED }, (_v, i) => `B${i}`);
    expect(shortList(ids, ' ', 'backups')).toBe(ids.join(' '));
    expect(shortList([], ' ', 'backups')).toBe('');
  });

  it('past that, keeps the first and last halves and says how many there are', () => {
    const ids = Array.from({ length: 570 }, (_v, i) => `B${i}`);
    expect(shortList(ids, ' ', 'backups')).toBe('B0 B1 B2 B3 … (570 backups in all) B566 B567 B568 B569');
    expect(shortList(ids.slice(0, MAX_LISTED + 1), '\n', 'gaps').split('\n')).toEqual(['B0', 'B1', 'B2', 'B3', '… (9 gaps in all)', 'B5', 'B6', 'B7', 'B8']);
  });
});
