/**
 * Which blocks changed since an incremental backup's parent, as a server-side map (ptrack, WAL
 * summaries) or archived WAL (PAGE mode) reports them. Pure data: the providers build it, the
 * copy reads only the listed pages.
 *
 * The contract every provider keeps: a relation file the map does not mention did not change
 * (false negatives are not allowed); a listed block may not have changed (false positives are
 * fine: the copy keeps only pages whose LSN is at or past the parent's start); 'all' means the
 * map cannot vouch for the file, which is then read whole and filtered by LSN, as DELTA does.
 */
export type FileChanges = readonly number[] | 'all';

export interface ChangeMap {
  /** Recorded in the backup as its change_source. */
  source: 'ptrack' | 'wal-summary' | 'wal';
  /**
   * Blocks (relative to the segment file, ascending, no duplicates) that may have changed in the
   * relation file at `path` (relative to PGDATA, e.g. base/5/16384.1); undefined when it did not.
   */
  changes(path: string): FileChanges | undefined;
}

/** Builds a map from per-file entries; lists are sorted and de-duplicated here. */
export function changeMapOf(source: ChangeMap['source'], entries: Iterable<[string, Iterable<number> | 'all']>): ChangeMap {
  const files = new Map<string, FileChanges>();
  for (const [path, blocks] of entries) {
    const prior = files.get(path);
    if (blocks === 'all' || prior === 'all') {
      files.set(path, 'all');
      continue;
    }
    const merged = new Set<number>(prior ?? []);
    for (const b of blocks) merged.add(b);
    files.set(path, [...merged].sort((a, b) => a - b));
  }
  return { source, changes: (path) => files.get(path) };
}
