/**
 * Copies the walked data directory into a backup with `threads` workers, choosing per file how
 * (see copy-entry.ts): everything whole for a FULL backup; for an incremental one, page deltas
 * for main and init forks the parent knows, changed-or-parent for every other file the parent
 * knows, and whole files for what is new since the parent. pg_control is copied last, always whole.
 *
 * Design note. The choice of how to copy a file is made here, on the main thread, and becomes a
 * CopyJob (plain data). With -j 2 or more and enough bytes to copy, jobs run on the main thread
 * and a pool of N - 1 worker threads (copy-worker.ts), one file per copier at a time, largest
 * first, so that page checks, hashing and framing use every core; otherwise all run in-process. Either way each completed
 * file's manifest entry comes back here, in `copyOne`'s caller, before the next job is taken.
 */
import type { FileEntry } from '../../core/backup-types.js';
import { PgkeepError } from '../../errors.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import { PG_CONTROL_PATH } from '../../postgres/pgdata-rules.js';
import { isDataFileForBlockIncremental, parseRelationPath } from '../../postgres/relation-file.js';
import { PosixStore } from '../../storage/posix-store.js';
import { forEachParallel } from '../parallel.js';
import { workerEntry, WorkerPool } from '../worker-pool.js';
import type { ChangeMap } from '../../core/change-map.js';
import type { OperationProgress } from '../progress.js';
import { entryWithoutData, runCopyJob, unchangedEntry, type CopyJob, type CopyJobResult, type CopyTarget, type CopyWorkerData } from './copy-entry.js';
import { READ_BUFFER_BYTES, type PageCheckCounters } from './read-data-file.js';

export interface IncrementalBase {
  /** The parent's reconstructed view: its manifest entries by path. */
  files: ReadonlyMap<string, FileEntry>;
  /** Pages at or past this LSN changed since the parent started. */
  sinceLsn: bigint;
  /** PTRACK and PAGE: which blocks changed (see core/change-map.ts). DELTA has none: it reads everything. */
  changeMap?: ChangeMap | undefined;
}

/** Resuming (resume-plan.ts): take over a file an interrupted attempt stored; hear of each file stored. */
export interface CopyHooks {
  reuse?(src: SourceEntry, counters: PageCheckCounters): Promise<FileEntry | undefined>;
  stored?(entry: FileEntry): Promise<void>;
  /** --progress: told each file as it is done (app/progress.ts). */
  progress?: OperationProgress;
}

/** Below this many bytes to read, threads cost more to start than they save: copy in-process. */
const WORKER_THRESHOLD_BYTES = 32 * 1024 * 1024;

export async function copySources(sources: readonly SourceEntry[], target: CopyTarget, threads: number, base: IncrementalBase | undefined, counters: PageCheckCounters, hooks: CopyHooks = {}): Promise<FileEntry[]> {
  const entries: FileEntry[] = [];
  const control = sources.find((s) => s.path === PG_CONTROL_PATH);
  const files = sources.filter((s) => s !== control && (s.kind === 'data' || s.kind === 'file'));
  for (const s of sources) if (s.kind === 'dir' || s.kind === 'symlink') entries.push(entryWithoutData(s, target));
  // Biggest files first, so that one large table does not start last and run alone.
  files.sort((a, b) => b.size - a.size);
  const runner = openCopyRunner(target, threads, files.length, bytesToRead(files, target, base));
  try {
    await forEachParallel(files, threads, async (src, _i, slot) => {
      const e = (await hooks.reuse?.(src, counters)) ?? (await copyOne(src, target, base, runner, slot, counters));
      if (e) entries.push(e);
      if (e && e.storedChecksum !== null) await hooks.stored?.(e);
      hooks.progress?.advance(1, src.size);
    });
    if (control) {
      const e = await runner.run({ how: 'full', src: control }, 0, counters, true);
      if (!e) throw new PgkeepError('PGDATA_NOT_FOUND', 'global/pg_control vanished from the data directory during the backup', 'check the data directory');
      entries.push(e);
      hooks.progress?.advance(1, control.size);
    }
  } finally {
    await runner.close();
  }
  return entries;
}

/** Decides how one file is copied and has it copied: null when it vanished. */
function copyOne(src: SourceEntry, target: CopyTarget, base: IncrementalBase | undefined, runner: CopyRunner, slot: number, counters: PageCheckCounters): Promise<FileEntry | null> {
  const job = planCopy(src, target, base);
  return 'how' in job ? runner.run(job, slot, counters) : Promise.resolve(job);
}

/** The job for one file, or its entry outright when the parent has it unchanged (nothing to read). */
function planCopy(src: SourceEntry, target: CopyTarget, base: IncrementalBase | undefined): CopyJob | FileEntry {
  const known = base?.files.get(src.path);
  if (!base || !known || known.kind !== src.kind) return { how: 'full', src };
  const rel = src.kind === 'data' ? parseRelationPath(src.path) : undefined;
  if (rel && isDataFileForBlockIncremental(rel)) {
    const changes = base.changeMap ? base.changeMap.changes(src.path) : 'all';
    if (changes === 'all') return { how: 'delta', src, parent: known, sinceLsn: base.sinceLsn };
    if (changes === undefined && src.size === known.size) return unchangedEntry(src, target, known);
    return { how: 'mapped-delta', src, parent: known, sinceLsn: base.sinceLsn, blocks: changes ?? [] };
  }
  return { how: 'if-changed', src, parent: known };
}

interface CopyRunner {
  /** Runs a job on worker `slot`'s resources; `inProcess` forces the main thread (pg_control). */
  run(job: CopyJob, slot: number, counters: PageCheckCounters, inProcess?: boolean): Promise<FileEntry | null>;
  close(): Promise<void>;
}

/** About how many bytes the copy will read: PTRACK and PAGE read only listed blocks, unchanged files nothing. */
function bytesToRead(files: readonly SourceEntry[], target: CopyTarget, base: IncrementalBase | undefined): number {
  let n = 0;
  for (const src of files) {
    const job = planCopy(src, target, base);
    if (!('how' in job)) continue;
    n += job.how === 'mapped-delta' ? (job.blocks.length + Math.max(0, src.size - job.parent.size) / target.blockSize) * target.blockSize : src.size;
  }
  return n;
}

function openCopyRunner(target: CopyTarget, threads: number, fileCount: number, readBytes: number): CopyRunner {
  const buffers: Buffer[] = [];
  const local = (job: CopyJob, slot: number, counters: PageCheckCounters) => runCopyJob(job, target, (buffers[slot] ??= Buffer.allocUnsafe(READ_BUFFER_BYTES)), counters);
  const entry = workerEntry(import.meta.url, './copy-worker.js');
  if (threads < 2 || fileCount < 2 || readBytes < WORKER_THRESHOLD_BYTES || !entry || !(target.store instanceof PosixStore)) {
    return { run: local, close: () => Promise.resolve() };
  }
  // The main thread is one of the `threads` copiers (slot 0): one isolate fewer, in memory and start-up.
  const { store, ...settings } = target;
  const pool = WorkerPool.start<CopyJob, CopyJobResult>(entry, Math.min(threads, fileCount) - 1, { root: store.root, settings } satisfies CopyWorkerData);
  return {
    async run(job, slot, counters, inProcess = false) {
      if (inProcess || slot === 0) return local(job, slot, counters);
      const r = await pool.run(job);
      counters.pagesRead += r.counters.pagesRead;
      counters.pagesReread += r.counters.pagesReread;
      counters.pagesTornAccepted += r.counters.pagesTornAccepted;
      return r.entry;
    },
    close: () => pool.close(),
  };
}
