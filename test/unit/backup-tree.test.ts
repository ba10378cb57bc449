// How `show` orders backups and labels their ID column: chains under their FULL backup, and an
// indentation that stops growing, so that a long chain keeps the table readable.
import { describe, expect, it } from 'vitest';
import type { BackupRecord } from '../../src/core/backup-types.js';
import { MAX_TREE_INDENT, orderAsTree, treeLabel } from '../../src/app/show/backup-tree.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

/** The fields orderAsTree reads; the rest of a record does not matter to it. */
function backup(id: string, minute: number, parentId: string | null): BackupRecord {
  return { id, parentId, startTime: new Date(T0 + minute * 60_000), mode: parentId ? 'PTRACK' : 'FULL' } as BackupRecord;
}

describe('show: backups as a tree', () => {
  it('puts each chain under its FULL backup, newest FULL first, newer siblings first', () => {
    const rows = orderAsTree([backup('F1', 0, null), backup('A', 1, 'F1'), backup('B', 2, 'A'), backup('C', 3, 'A'), backup('F2', 4, null), backup('ORPHAN', 5, 'GONE')]);
    expect(rows.map((r) => `${r.backup.id}@${r.depth}`)).toEqual(['ORPHAN@0', 'F2@0', 'F1@0', 'A@1', 'C@2', 'B@2']);
  });

  it('indents two spaces a level, and no further than MAX_TREE_INDENT levels', () => {
    expect(treeLabel('F1', 0)).toBe('F1');
    expect(treeLabel('A', 1)).toBe('└ A');
    expect(treeLabel('B', 3)).toBe('    └ B');
    expect(treeLabel('X', MAX_TREE_INDENT)).toBe(`${'  '.repeat(MAX_TREE_INDENT - 1)}└ X`);
    expect(treeLabel('Y', MAX_TREE_INDENT + 1)).toBe(treeLabel('Y', MAX_TREE_INDENT));
  });

  it('keeps the ID column narrow for a chain of 600 incremental backups', () => {
    const chain = [backup('B0', 0, null)];
    for (let i = 1; i < 600; i++) chain.push(backup(`B${i}`, i, `B${i - 1}`));
    const rows = orderAsTree(chain);
    expect(rows.map((r) => r.depth)).toEqual(chain.map((_b, i) => i));
    const widest = Math.max(...rows.map((r) => treeLabel(r.backup.id, r.depth).length));
    expect(widest).toBeLessThanOrEqual(2 * MAX_TREE_INDENT + 'B599'.length);
  });
});
