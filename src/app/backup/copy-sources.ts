/**
 * Copies the walked data directory into a backup with `threads` workers, choosing per file how
 * (see copy-entry.ts): everything whole for a FULL backup; for an incremental one, page deltas
 * for main and init forks the parent knows, changed-or-parent for every other file the parent
 * knows, and whole files for what is new since the parent. pg_control is copied last, always whole.
 */
import type { FileEntry } from '../../core/backup-types.js';
import { PgkeepError } from '../../errors.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import { PG_CONTROL_PATH } from '../../postgres/pgdata-rules.js';
import { isDataFileForBlockIncremental, parseRelationPath } from '../../postgres/relation-file.js';
import { forEachParallel } from '../parallel.js';
import type { ChangeMap } from '../../core/change-map.js';
import { copyDelta, copyFull, copyIfChanged, copyMappedDelta, entryWithoutData, unchangedEntry, type CopyTarget } from './copy-entry.js';
import type { PageCheckCounters } from './read-data-file.js';

export interface IncrementalBase {
  /** The parent's reconstructed view: its manifest entries by path. */
  files: ReadonlyMap<string, FileEntry>;
  /** Pages at or past this LSN changed since the parent started. */
  sinceLsn: bigint;
  /** PTRACK and PAGE: which blocks changed (see core/change-map.ts). DELTA has none: it reads everything. */
  changeMap?: ChangeMap | undefined;
}

const READ_BUFFER_BYTES = 1024 * 1024;

export async function copySources(sources: readonly SourceEntry[], target: CopyTarget, threads: number, base: IncrementalBase | undefined, counters: PageCheckCounters): Promise<FileEntry[]> {
  const entries: FileEntry[] = [];
  const control = sources.find((s) => s.path === PG_CONTROL_PATH);
  const files = sources.filter((s) => s !== control && (s.kind === 'data' || s.kind === 'file'));
  for (const s of sources) if (s.kind === 'dir' || s.kind === 'symlink') entries.push(entryWithoutData(s, target));
  // Biggest files first, so that one large table does not start last and run alone.
  files.sort((a, b) => b.size - a.size);
  const buffers = Array.from({ length: Math.max(1, threads) }, () => Buffer.allocUnsafe(READ_BUFFER_BYTES));
  await forEachParallel(files, threads, async (src, _i, worker) => {
    const e = await copyOne(src, target, base, buffers[worker]!, counters);
    if (e) entries.push(e);
  });
  if (control) {
    const e = await copyFull(control, target, buffers[0]!, counters);
    if (!e) throw new PgkeepError('PGDATA_NOT_FOUND', 'global/pg_control vanished from the data directory during the backup', 'check the data directory');
    entries.push(e);
  }
  return entries;
}

function copyOne(src: SourceEntry, target: CopyTarget, base: IncrementalBase | undefined, buffer: Buffer, counters: PageCheckCounters): Promise<FileEntry | null> {
  const known = base?.files.get(src.path);
  if (!base || !known || known.kind !== src.kind) return copyFull(src, target, buffer, counters);
  const rel = src.kind === 'data' ? parseRelationPath(src.path) : undefined;
  if (rel && isDataFileForBlockIncremental(rel)) {
    if (!base.changeMap) return copyDelta(src, target, known, base.sinceLsn, buffer, counters);
    const changes = base.changeMap.changes(src.path);
    if (changes === 'all') return copyDelta(src, target, known, base.sinceLsn, buffer, counters);
    if (changes === undefined && src.size === known.size) return Promise.resolve(unchangedEntry(src, target, known));
    return copyMappedDelta(src, target, known, base.sinceLsn, changes ?? [], buffer, counters);
  }
  return copyIfChanged(src, target, known, buffer, counters);
}
