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
 * file's manifest entry comes back here, in `copySources`, before the next job is taken.
 */
import type { FileEntry, StoredPart } from '../../core/backup-types.js';
import { partsToKeep } from '../../core/part-tiling.js';
import { backupDataKey } from '../../repository/layout.js';
import { PageDeltaReader, PageDeltaWriter } from '../../repository/page-delta.js';
import { STORED_CHUNK_SIZE } from '../../repository/stored-file-format.js';
import { PART_BYTES, partKey, partRanges, partTreeChecksum } from '../../repository/stored-parts.js';
import { PgkeepError } from '../../errors.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import { PG_CONTROL_PATH } from '../../postgres/pgdata-rules.js';
import { isDataFileForBlockIncremental, parseRelationPath } from '../../postgres/relation-file.js';
import { PosixStore } from '../../storage/posix-store.js';
import { forEachParallel } from '../../core/parallel.js';
import { workerEntry, WorkerPool } from '../worker-pool.js';
import type { ChangeMap } from '../../core/change-map.js';
import type { OperationProgress } from '../progress.js';
import { entryWithoutData, runCopyJob, runPartJob, unchangedEntry, type CopiedPart, type CopyJob, type CopyJobResult, type CopyTarget, type CopyWorkerData, type PartJob } from './copy-entry.js';
import { noteTornPage, READ_BUFFER_BYTES, type PageCheckCounters } from './read-data-file.js';
import { storedDataKeys } from '../stored-data-keys.js';

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
  /** Told the keys of stored files as they are committed, a part of a large file as soon as it is (before `stored` of its entry). */
  committed?(keys: readonly string[]): void;
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
  // Each file's job is decided once, here: the task list, the bytes estimate and the copy use it.
  const planned = files.map((src) => ({ src, job: planCopy(src, target, base) }));
  const tasks = copyTasks(planned, threads, hooks, new Set(sources.map((s) => s.path)));
  const runner = openCopyRunner(target, threads, tasks.length, bytesToRead(planned, target.blockSize));
  const done = async (e: FileEntry | null, src: SourceEntry) => {
    if (e) entries.push(e);
    if (e && e.storedChecksum !== null) {
      hooks.committed?.(storedDataKeys(target.instance, target.backupId, [e]));
      await hooks.stored?.(e);
    }
    hooks.progress?.advance(1, src.size);
  };
  try {
    await forEachParallel(tasks, threads, async (task, _i, slot) => {
      if ('src' in task) {
        const { job } = task;
        const e = (await hooks.reuse?.(task.src, counters)) ?? ('how' in job ? await runner.run(job, slot, counters) : job);
        await done(e, task.src);
        return;
      }
      const { group, index } = task;
      group.parts[index] = await runner.runPart(partJob(group, index), slot, counters);
      // A DELTA's part may store nothing: a key with no file is skipped there.
      if (group.parts[index]) hooks.committed?.([partKey(backupDataKey(target.instance, target.backupId, group.src.path), index)]);
      if (--group.left > 0) return;
      const copyWhole = () => runner.run(group.job, slot, counters);
      await done(group.job.how === 'delta' ? await entryFromDeltaParts(group, group.job, target, copyWhole) : await entryFromParts(group, target, copyWhole), group.src);
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

/** A large file copied in parts: the whole-file job it stands for, the parts' results as they come, and how many are still out. */
interface PartGroup {
  src: SourceEntry;
  job: Extract<CopyJob, { how: 'full' | 'delta' }>;
  partSize: number;
  parts: (CopiedPart | null)[];
  left: number;
}

/** A file and how it is copied: a job, or its entry outright when there is nothing to read. */
interface PlannedFile {
  src: SourceEntry;
  job: CopyJob | FileEntry;
}

type CopyTask = (PlannedFile & { size: number }) | { group: PartGroup; index: number; size: number };

/**
 * The copy's work list, largest first so that no big piece starts last and runs alone. With two
 * copiers or more, a relation file larger than a part that is copied whole, or scanned whole for
 * a DELTA, is cut into parts (repository/stored-parts.ts), so that one large segment is read by
 * every copier at once. A DELTA scan uses the parent's part size when it has one, so that an
 * unchanged file keeps the parent's very checksum. Not when resuming (an earlier attempt's whole
 * file may be taken over as it is), and never when a part's name would be a file of the data
 * directory.
 */
function copyTasks(files: readonly PlannedFile[], threads: number, hooks: CopyHooks, paths: ReadonlySet<string>): CopyTask[] {
  const tasks: CopyTask[] = [];
  const configured = configuredPartBytes();
  for (const { src, job } of files) {
    const splittable = src.kind === 'data' && threads >= 2 && hooks.reuse === undefined;
    const whole = splittable && 'how' in job && (job.how === 'full' || job.how === 'delta') ? job : undefined;
    const partSize = whole?.how === 'delta' ? (whole.parent.partSize ?? configured) : configured;
    const ranges = partRanges(src.size, partSize);
    if (!whole || ranges.length < 2 || ranges.some((_r, i) => paths.has(partKey(src.path, i)))) {
      tasks.push({ src, job, size: src.size });
      continue;
    }
    const group: PartGroup = { src, job: whole, partSize, parts: ranges.map(() => null), left: ranges.length };
    ranges.forEach((r, index) => tasks.push({ group, index, size: r.length }));
  }
  return tasks.sort((a, b) => b.size - a.size);
}

function partJob(group: PartGroup, index: number): PartJob {
  const { src, partSize, job } = group;
  return job.how === 'delta' ? { how: 'delta-part', src, index, partSize, sinceLsn: job.sinceLsn } : { how: 'part', src, index, partSize };
}

/**
 * Bytes per part: PART_BYTES, or PGKEEP_PART_BYTES when set (a multiple of 1 MiB; the tests use
 * small parts so that small tables are split). Each entry records its part size.
 */
function configuredPartBytes(): number {
  const v = process.env.PGKEEP_PART_BYTES;
  if (v === undefined || v === '') return PART_BYTES;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0 || n % STORED_CHUNK_SIZE !== 0) {
    throw new PgkeepError('INVALID_ARGUMENT', `PGKEEP_PART_BYTES is ${v}, not a positive multiple of ${STORED_CHUNK_SIZE}`, 'unset it, or set a multiple of 1 MiB');
  }
  return n;
}

/**
 * The manifest entry of a file copied in parts, once every part is in. The parts must tile the
 * file as it was read: all but the last full, or the file shrank while it was copied and the
 * parts after the first short one are empty (dropped). A file that vanished gives null; one that
 * shrank and grew again between parts is copied again whole. One part left is stored as a
 * plain whole file.
 */
async function entryFromParts(group: PartGroup, target: CopyTarget, copyWhole: () => Promise<FileEntry | null>): Promise<FileEntry | null> {
  const { src } = group;
  const key = backupDataKey(target.instance, target.backupId, src.path);
  const whole = await tilingParts(group, target, key);
  if (whole === null) return null;
  if (whole === 'recopy') return copyWhole();
  const base = { ...entryWithoutData(src, target), storage: 'full' as const, compressAlg: target.compressAlg };
  const size = whole.reduce((n, p) => n + p.size, 0);
  const blocks = Math.floor(size / target.blockSize);
  if (whole.length === 1) {
    await target.store.link(partKey(key, 0), key);
    await target.store.remove(partKey(key, 0));
    const p = whole[0]!;
    return { ...base, size, blocks, storedSize: p.storedSize, storedChecksum: p.storedChecksum, checksum: p.checksum };
  }
  const stored: StoredPart[] = whole.map((p) => ({ checksum: p.checksum, storedSize: p.storedSize, storedChecksum: p.storedChecksum }));
  return {
    ...base,
    size,
    blocks,
    storedSize: stored.reduce((n, p) => n + p.storedSize, 0),
    storedChecksum: partTreeChecksum(stored.map((p) => p.storedChecksum)),
    checksum: partTreeChecksum(stored.map((p) => p.checksum)),
    partSize: group.partSize,
    parts: stored,
  };
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

/**
 * The parts that make a file's entry, once every part is in, with the part files past them
 * removed: null when the file vanished and 'recopy' when the parts do not tile one file
 * (core/part-tiling.ts), every part file removed in both cases.
 */
async function tilingParts(group: PartGroup, target: CopyTarget, key: string): Promise<CopiedPart[] | null | 'recopy'> {
  const { parts } = group;
  if (parts.some((p) => p === null)) {
    await removePartFiles(target, key, 0, parts.length);
    return null;
  }
  const copied = parts as CopiedPart[];
  const kept = partsToKeep(copied.map((p) => p.size), group.partSize);
  await removePartFiles(target, key, kept === 'recopy' ? 0 : kept, parts.length);
  return kept === 'recopy' ? 'recopy' : copied.slice(0, kept);
}

/** Removes part files `from` to `to` (exclusive) of the file whose data key is `key`; missing ones are fine. */
async function removePartFiles(target: CopyTarget, key: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) await target.store.remove(partKey(key, i));
}

/**
 * The manifest entry of a DELTA scan made in parts, once every part is in: the parts must tile
 * the file as for entryFromParts (else it is scanned again whole). The content checksum is the
 * part-tree of the parts' checksums (with `partSize`); the changed pages of all parts are joined,
 * in block order, into the file's one page-delta file, and the parts' temporary files removed.
 */
async function entryFromDeltaParts(group: PartGroup, job: Extract<CopyJob, { how: 'delta' }>, target: CopyTarget, copyWhole: () => Promise<FileEntry | null>): Promise<FileEntry | null> {
  const { src, partSize } = group;
  const bs = target.blockSize;
  const key = backupDataKey(target.instance, target.backupId, src.path);
  const used = await tilingParts(group, target, key);
  if (used === null) return null;
  if (used === 'recopy') return copyWhole();
  const removeParts = () => removePartFiles(target, key, 0, used.length);
  const blocks = used.reduce((n, p) => n + p.size, 0) / bs;
  const base = { ...entryWithoutData(src, target), size: blocks * bs, blocks, checksum: partTreeChecksum(used.map((p) => p.checksum)), partSize };
  if (used.every((p) => !p.pageCount) && blocks === job.parent.blocks) {
    await removeParts();
    return { ...base, storage: 'parent' };
  }
  const writer = await PageDeltaWriter.open(target.store, key, target.compressAlg, target.compressLevel, bs);
  try {
    for (let i = 0; i < used.length; i++) {
      const p = used[i]!;
      if (!p.pageCount) continue;
      const reader = new PageDeltaReader(target.store, partKey(key, i), 'none', { blockSize: bs, verifyStoredChecksum: p.storedChecksum });
      for await (const run of reader.runs()) await writer.addPages(run.start, run.pages);
    }
    const r = await writer.finish(blocks);
    await removeParts();
    return { ...base, storage: 'delta', storedSize: r.storedSize, storedChecksum: r.storedChecksum, compressAlg: target.compressAlg, deltaBlocks: r.pageCount };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

interface CopyRunner {
  /** Runs a job on worker `slot`'s resources; `inProcess` forces the main thread (pg_control). */
  run(job: CopyJob, slot: number, counters: PageCheckCounters, inProcess?: boolean): Promise<FileEntry | null>;
  runPart(job: PartJob, slot: number, counters: PageCheckCounters): Promise<CopiedPart | null>;
  close(): Promise<void>;
}

/** About how many bytes the copy will read: PTRACK and PAGE read only listed blocks, unchanged files nothing. */
function bytesToRead(files: readonly PlannedFile[], blockSize: number): number {
  let n = 0;
  for (const { src, job } of files) {
    if (!('how' in job)) continue;
    n += job.how === 'mapped-delta' ? (job.blocks.length + Math.max(0, src.size - job.parent.size) / blockSize) * blockSize : src.size;
  }
  return n;
}

function openCopyRunner(target: CopyTarget, threads: number, taskCount: number, readBytes: number): CopyRunner {
  const buffers: Buffer[] = [];
  const bufferOf = (slot: number) => (buffers[slot] ??= Buffer.allocUnsafe(READ_BUFFER_BYTES));
  const local = (job: CopyJob, slot: number, counters: PageCheckCounters) => runCopyJob(job, target, bufferOf(slot), counters);
  const localPart = (job: PartJob, slot: number, counters: PageCheckCounters) => runPartJob(job, target, bufferOf(slot), counters);
  const entry = workerEntry(import.meta.url, './copy-worker.js');
  if (threads < 2 || taskCount < 2 || readBytes < WORKER_THRESHOLD_BYTES || !entry || !(target.store instanceof PosixStore)) {
    return { run: local, runPart: localPart, close: () => Promise.resolve() };
  }
  // The main thread is one of the `threads` copiers (slot 0): one isolate fewer, in memory and start-up.
  const { store, ...settings } = target;
  const pool = WorkerPool.start<CopyJob | PartJob, CopyJobResult>(entry, Math.min(threads, taskCount) - 1, { root: store.root, defersSync: store.defersSync, settings } satisfies CopyWorkerData);
  const remote = async (job: CopyJob | PartJob, counters: PageCheckCounters) => {
    const r = await pool.run(job);
    counters.pagesRead += r.counters.pagesRead;
    counters.pagesReread += r.counters.pagesReread;
    counters.pagesTornAccepted += r.counters.pagesTornAccepted;
    noteTornPage(counters, r.counters.latestTorn);
    return r;
  };
  return {
    async run(job, slot, counters, inProcess = false) {
      if (inProcess || slot === 0) return local(job, slot, counters);
      return (await remote(job, counters)).entry;
    },
    async runPart(job, slot, counters) {
      if (slot === 0) return localPart(job, slot, counters);
      return (await remote(job, counters)).part ?? null;
    },
    close: () => pool.close(),
  };
}
