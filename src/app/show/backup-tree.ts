/**
 * Orders backups so that chains read naturally: each FULL backup (newest first) followed by its
 * descendants, each child under its parent, newer siblings first. A backup whose parent is gone
 * is shown as a root. Pure.
 *
 * The label indents each level by two spaces, up to MAX_TREE_INDENT levels: a chain of hundreds
 * of incremental backups (hourly ones under a weekly FULL) would otherwise make the ID column
 * as wide as the chain is long, and the whole table unreadable. Deeper rows stay at that
 * indentation; the Parent column beside them names each one's parent.
 */
import type { BackupRecord } from '../../core/backup-types.js';

export interface TreeRow {
  backup: BackupRecord;
  depth: number;
}

export function orderAsTree(backups: readonly BackupRecord[]): TreeRow[] {
  const ids = new Set(backups.map((b) => b.id));
  const children = new Map<string, BackupRecord[]>();
  const roots: BackupRecord[] = [];
  for (const b of backups) {
    if (b.parentId !== null && ids.has(b.parentId)) {
      const list = children.get(b.parentId) ?? [];
      list.push(b);
      children.set(b.parentId, list);
    } else {
      roots.push(b);
    }
  }
  const newestFirst = (a: BackupRecord, b: BackupRecord) => b.startTime.getTime() - a.startTime.getTime() || (a.id < b.id ? 1 : -1);
  const rows: TreeRow[] = [];
  const visit = (b: BackupRecord, depth: number, seen: Set<string>) => {
    if (seen.has(b.id)) return;
    seen.add(b.id);
    rows.push({ backup: b, depth });
    for (const c of (children.get(b.id) ?? []).sort(newestFirst)) visit(c, depth + 1, seen);
  };
  const seen = new Set<string>();
  for (const r of roots.sort(newestFirst)) visit(r, 0, seen);
  return rows;
}

/** Levels of indentation shown before rows stop moving right. */
export const MAX_TREE_INDENT = 8;

/** A row's ID as the table shows it: "ID" for a root, "└ ID" under its parent, indented by depth. */
export function treeLabel(id: string, depth: number): string {
  if (depth === 0) return id;
  return `${'  '.repeat(Math.min(depth, MAX_TREE_INDENT) - 1)}└ ${id}`;
}
