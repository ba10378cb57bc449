/**
 * Copies one source entry of the data directory into a backup and returns its manifest entry,
 * or null when the file vanished while the backup ran (dropped; WAL replay handles it).
 *
 * Three ways, chosen by copy-sources.ts:
 *   full   the whole file, pages verified on the way (relation files) or bytes as they are;
 *   delta  a relation file known to the parent: every page is read and verified, and only the
 *          pages at or past the parent's start LSN (plus LSN-0 new or zero pages) are stored;
 *          if none and the length is unchanged, the entry defers to the parent;
 *   parent-if-same  any other file known to the parent: hashed first, stored only if it changed.
 */
import { open, stat } from 'node:fs/promises';
import type { CompressAlg, FileEntry } from '../../core/backup-types.js';
import { errnoCode, fromIoError } from '../../errors.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import { RELSEG_BLOCKS, parseRelationPath } from '../../postgres/relation-file.js';
import { backupDataKey } from '../../repository/layout.js';
import { PageDeltaWriter } from '../../repository/page-delta.js';
import { StoredFileWriter } from '../../repository/stored-file.js';
import { createHasher, type Hasher } from '../../repository/hash.js';
import { createContentHasher, partKey } from '../../repository/stored-parts.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { readDataFilePages, readSelectedPages, type FileRange, type PageCheckCounters } from './read-data-file.js';
import { openSourceFile } from './source-file.js';

export interface CopyTarget {
  store: ByteStore;
  instance: string;
  backupId: string;
  compressAlg: CompressAlg;
  compressLevel: number;
  blockSize: number;
  checksumsEnabled: boolean;
  startLsn: bigint;
  verifyPages: boolean;
  uid: number;
  gid: number;
}

/** A CopyTarget without its store: what a worker thread is given (it opens its own store). */
export type CopySettings = Omit<CopyTarget, 'store'>;

/**
 * One file's copy as plain data, so that it can be sent to a worker thread: the source entry,
 * how to copy it (copy-sources.ts decides), and what that way needs of the parent.
 */
export type CopyJob =
  | { how: 'full'; src: SourceEntry }
  | { how: 'delta'; src: SourceEntry; parent: FileEntry; sinceLsn: bigint }
  | { how: 'mapped-delta'; src: SourceEntry; parent: FileEntry; sinceLsn: bigint; blocks: readonly number[] }
  | { how: 'if-changed'; src: SourceEntry; parent: FileEntry };

/**
 * One part of a large file copied in parts (copy-sources.ts): bytes [index × partSize, +partSize).
 * `part` stores the bytes (a part of a parted full copy); `delta-part` scans them for pages
 * changed since `sinceLsn` (a part of a DELTA scan, joined into one page-delta file after).
 */
export type PartJob = { how: 'part'; src: SourceEntry; index: number; partSize: number } | { how: 'delta-part'; src: SourceEntry; index: number; partSize: number; sinceLsn: bigint };

/**
 * What one part's copy stored (repository/stored-parts.ts): for a delta part, `pageCount`
 * changed pages in a temporary page-delta file at the part's key (none stored when 0).
 */
export interface CopiedPart {
  size: number;
  checksum: string;
  storedSize: number;
  storedChecksum: string;
  pageCount?: number;
}

/** Runs one part job; null when the file vanished. */
export function runPartJob(job: PartJob, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters): Promise<CopiedPart | null> {
  return job.how === 'part' ? copyPart(job, t, buffer, counters) : scanDeltaPart(job, t, buffer, counters);
}

/** What a worker thread (copy-worker.ts) is started with: it opens its own store over `root`. */
export interface CopyWorkerData {
  root: string;
  /** The main thread's store defers its fsyncs (ByteStore.deferringSync): the worker's does too. */
  defersSync: boolean;
  settings: CopySettings;
}

/** What a worker sends back for one job: `part` for a PartJob, `entry` for the others. */
export interface CopyJobResult {
  entry: FileEntry | null;
  part?: CopiedPart | null;
  counters: PageCheckCounters;
}

/** Runs one job: the manifest entry, or null when the file vanished. */
export function runCopyJob(job: CopyJob, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters): Promise<FileEntry | null> {
  switch (job.how) {
    case 'full':
      return copyFull(job.src, t, buffer, counters);
    case 'delta':
      return copyDelta(job.src, t, job.parent, job.sinceLsn, buffer, counters);
    case 'mapped-delta':
      return copyMappedDelta(job.src, t, job.parent, job.sinceLsn, job.blocks, buffer, counters);
    case 'if-changed':
      return copyIfChanged(job.src, t, job.parent, buffer, counters);
  }
}

/**
 * One part of a relation file, stored as its own stored file at `partKey(<data key>, index)`:
 * null when the file vanished. A file that shrank since the walk gives a short or empty part;
 * copy-sources.ts makes the entry from the parts.
 */
export async function copyPart(job: Extract<PartJob, { how: 'part' }>, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters): Promise<CopiedPart | null> {
  const { src, index, partSize } = job;
  const writer = await StoredFileWriter.open(t.store, partKey(backupDataKey(t.instance, t.backupId, src.path), index), t.compressAlg, t.compressLevel);
  try {
    if (!(await storePages(src, t, buffer, counters, writer, { offset: index * partSize, length: partSize }))) {
      await writer.abort();
      return null;
    }
    const r = await writer.finish();
    return { size: r.size, checksum: r.checksum, storedSize: r.storedSize, storedChecksum: r.storedChecksum };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

/**
 * One part of a DELTA scan: the part's pages are read and verified, hashed (the part's content
 * checksum), and the changed ones written, uncompressed, to a temporary page-delta file at the
 * part's key, with block numbers of the whole file; copy-sources.ts joins the parts into the
 * file's one page-delta file and removes them.
 */
async function scanDeltaPart(job: Extract<PartJob, { how: 'delta-part' }>, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters): Promise<CopiedPart | null> {
  const { src, index, partSize } = job;
  const bs = t.blockSize;
  const since = lsnHalves(job.sinceLsn);
  const firstBlock = (index * partSize) / bs;
  const writer = new DeferredDeltaWriter(() => PageDeltaWriter.open(t.store, partKey(backupDataKey(t.instance, t.backupId, src.path), index), 'none', 0, bs));
  const content = createHasher();
  try {
    const blocks = await scanChangedPages(src, t, buffer, counters, { content, writer, firstBlock, since }, { offset: index * partSize, length: partSize });
    if (blocks === null) {
      await writer.abort();
      return null;
    }
    const checksum = content.digestHex();
    if (writer.pageCount === 0) {
      await writer.abort();
      return { size: blocks * bs, checksum, storedSize: 0, storedChecksum: checksum, pageCount: 0 };
    }
    const r = await writer.finish(firstBlock + blocks);
    return { size: blocks * bs, checksum, storedSize: r.storedSize, storedChecksum: r.storedChecksum, pageCount: r.pageCount };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

/** Describes entries that hold no bytes (directories, links). */
export function entryWithoutData(src: SourceEntry, target: Pick<CopyTarget, 'uid' | 'gid'>): FileEntry {
  const e: FileEntry = {
    path: src.path,
    kind: src.kind,
    mode: src.mode,
    mtimeMs: Math.trunc(src.mtimeMs),
    size: 0,
    storage: 'none',
    storedSize: 0,
    storedChecksum: null,
    checksum: null,
    compressAlg: 'none',
    uid: target.uid,
    gid: target.gid,
  };
  if (src.linkTarget !== undefined) e.linkTarget = src.linkTarget;
  return e;
}

function pageOptions(src: SourceEntry, t: CopyTarget) {
  const rel = parseRelationPath(src.path);
  return { blockSize: t.blockSize, checksumsEnabled: t.checksumsEnabled, startLsn: t.startLsn, verify: t.verifyPages, firstBlock: (rel?.segNo ?? 0) * RELSEG_BLOCKS };
}

/** The whole file, through page verification for relation files. */
export async function copyFull(src: SourceEntry, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters): Promise<FileEntry | null> {
  const writer = await StoredFileWriter.open(t.store, backupDataKey(t.instance, t.backupId, src.path), t.compressAlg, t.compressLevel);
  try {
    let present: boolean;
    if (src.kind === 'data') {
      present = await storePages(src, t, buffer, counters, writer);
    } else {
      present = await readPlainFile(src.absPath, buffer, (chunk) => writer.write(chunk));
    }
    if (!present) {
      await writer.abort();
      return null;
    }
    const r = await writer.finish();
    return {
      ...entryWithoutData(src, t),
      size: r.size,
      storage: 'full',
      storedSize: r.storedSize,
      storedChecksum: r.storedChecksum,
      checksum: r.checksum,
      compressAlg: t.compressAlg,
      ...(src.kind === 'data' ? { blocks: Math.floor(r.size / t.blockSize) } : {}),
    };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

/** Changed pages of a relation file since `sinceLsn` (the parent's start LSN). */
export async function copyDelta(src: SourceEntry, t: CopyTarget, parent: FileEntry, sinceLsn: bigint, buffer: Buffer, counters: PageCheckCounters): Promise<FileEntry | null> {
  const bs = t.blockSize;
  const since = lsnHalves(sinceLsn);
  const writer = new DeferredDeltaWriter(() => PageDeltaWriter.open(t.store, backupDataKey(t.instance, t.backupId, src.path), t.compressAlg, t.compressLevel, bs));
  // In the parent's checksum form, so that an unchanged file has the parent's very checksum.
  const content = createContentHasher(parent);
  try {
    const blocks = await scanChangedPages(src, t, buffer, counters, { content, writer, firstBlock: 0, since });
    if (blocks === null) {
      await writer.abort();
      return null;
    }
    const checksum = content.digestHex();
    const base = { ...entryWithoutData(src, t), size: blocks * bs, blocks, checksum, ...(parent.partSize !== undefined ? { partSize: parent.partSize } : {}) };
    if (writer.pageCount === 0 && blocks === parent.blocks) {
      await writer.abort();
      return { ...base, storage: 'parent' };
    }
    const r = await writer.finish(blocks);
    return { ...base, storage: 'delta', storedSize: r.storedSize, storedChecksum: r.storedChecksum, compressAlg: t.compressAlg, deltaBlocks: r.pageCount };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

/**
 * Changed pages of a relation file as a change map lists them: only those blocks are read (plus
 * any the file grew by since the parent), and of those only pages at or past the parent's start
 * LSN are kept (a map may list more than changed). The content checksum of the whole file is
 * unknown, since the file is not read whole: the entry carries none.
 */
export async function copyMappedDelta(src: SourceEntry, t: CopyTarget, parent: FileEntry, sinceLsn: bigint, listed: readonly number[], buffer: Buffer, counters: PageCheckCounters): Promise<FileEntry | null> {
  const bs = t.blockSize;
  const since = lsnHalves(sinceLsn);
  const size = await currentSize(src.absPath);
  if (size === undefined) return null;
  const blocks = Math.floor(size / bs);
  const grown: number[] = [];
  for (let b = parent.blocks ?? 0; b < blocks; b++) grown.push(b);
  const wanted = mergeAscending(listed.filter((b) => b < blocks), grown);
  const writer = new DeferredDeltaWriter(() => PageDeltaWriter.open(t.store, backupDataKey(t.instance, t.backupId, src.path), t.compressAlg, t.compressLevel, bs));
  try {
    await readSelectedPages(src.absPath, src.path, wanted, buffer, pageOptions(src, t), counters, (start, pages) => addChangedRuns(writer, pages, start, since, bs));
    const base = { ...entryWithoutData(src, t), size: blocks * bs, blocks, checksum: null };
    if (writer.pageCount === 0 && blocks === parent.blocks) {
      await writer.abort();
      return { ...base, storage: 'parent', ...parentChecksum(parent) };
    }
    const r = await writer.finish(blocks);
    return { ...base, storage: 'delta', storedSize: r.storedSize, storedChecksum: r.storedChecksum, compressAlg: t.compressAlg, deltaBlocks: r.pageCount };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
}

/** A relation file the change map does not mention, with its length unchanged: defer to the parent without reading it. */
export function unchangedEntry(src: SourceEntry, t: CopyTarget, parent: FileEntry): FileEntry {
  return { ...entryWithoutData(src, t), size: parent.size, blocks: parent.blocks ?? Math.floor(parent.size / t.blockSize), storage: 'parent', ...parentChecksum(parent) };
}

/** The parent's content checksum, with the part size that says how to check it when it has one. */
function parentChecksum(parent: FileEntry): Pick<FileEntry, 'checksum' | 'partSize'> {
  return parent.partSize === undefined ? { checksum: parent.checksum } : { checksum: parent.checksum, partSize: parent.partSize };
}

async function currentSize(absPath: string): Promise<number | undefined> {
  try {
    return (await stat(absPath)).size;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw fromIoError(e, 'stat', absPath);
  }
}

function mergeAscending(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i++]! : b[j++]!;
    if (out.length === 0 || out[out.length - 1]! < next) out.push(next);
  }
  return out;
}

/** An LSN as its two 32-bit halves, as pd_lsn stores it: compared per page without a bigint. */
interface LsnHalves {
  hi: number;
  lo: number;
}

function lsnHalves(lsn: bigint): LsnHalves {
  return { hi: Number(lsn >> 32n), lo: Number(lsn & 0xffff_ffffn) };
}

/**
 * A page-delta writer opened on the first page stored (or at `finish`): most relation files of an
 * incremental backup store no page, and opening one costs a temporary file made and removed,
 * several file-system calls each on libuv's thread pool.
 */
class DeferredDeltaWriter {
  private writer: PageDeltaWriter | undefined;

  constructor(private readonly open: () => Promise<PageDeltaWriter>) {}

  get pageCount(): number {
    return this.writer?.pageCount ?? 0;
  }

  async addPages(start: number, pages: Uint8Array): Promise<void> {
    this.writer ??= await this.open();
    await this.writer.addPages(start, pages);
  }

  /** PageDeltaWriter.addPagesNow: false before the writer is open. */
  addPagesNow(start: number, pages: Uint8Array): boolean {
    return this.writer?.addPagesNow(start, pages) ?? false;
  }

  async finish(fileBlocks: number): ReturnType<PageDeltaWriter['finish']> {
    this.writer ??= await this.open();
    return this.writer.finish(fileBlocks);
  }

  async abort(): Promise<void> {
    await this.writer?.abort();
  }
}

/**
 * Hands the runs of consecutive changed pages of `pages` (block `firstBlock` on) to the writer, a
 * run at a time: synchronously while the writer can gather them (addPagesNow), so that a page
 * costs no wait; a promise only from the first run that needs the stored file.
 */
function addChangedRuns(writer: DeferredDeltaWriter, pages: Buffer, firstBlock: number, since: LsnHalves, bs: number): Promise<void> | undefined {
  const n = pages.length / bs;
  let runStart = -1;
  for (let i = 0; i <= n; i++) {
    const changed = i < n && isChanged(pages, i * bs, since);
    if (changed && runStart < 0) runStart = i;
    if (!changed && runStart >= 0) {
      const run = pages.subarray(runStart * bs, i * bs);
      if (!writer.addPagesNow(firstBlock + runStart, run)) return addThenContinue(writer, run, pages.subarray(i * bs), firstBlock + runStart, firstBlock + i, since, bs);
      runStart = -1;
    }
  }
  return undefined;
}

/** addChangedRuns' slow path: `run` (at block `runBlock`) through the writer's wait, then the pages after it (from `restBlock`). */
async function addThenContinue(writer: DeferredDeltaWriter, run: Buffer, rest: Buffer, runBlock: number, restBlock: number, since: LsnHalves, bs: number): Promise<void> {
  await writer.addPages(runBlock, run);
  await addChangedRuns(writer, rest, restBlock, since, bs);
}

/**
 * Writes the verified pages of a relation file (or of `range`) to `writer`: false when the file
 * vanished (no page read and no file).
 */
async function storePages(src: SourceEntry, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters, writer: StoredFileWriter, range?: FileRange): Promise<boolean> {
  let any = false;
  for await (const pages of readDataFilePages(src.absPath, src.path, buffer, pageOptions(src, t), counters, range)) {
    any = true;
    await writer.write(pages);
  }
  return any || exists(src.absPath);
}

/** Where a DELTA scan puts what it reads: all pages hashed into `content`, changed ones (block `firstBlock` on) to `writer`. */
interface DeltaScan {
  content: Hasher;
  writer: DeferredDeltaWriter;
  firstBlock: number;
  since: LsnHalves;
}

/** Scans a relation file (or `range`) for a DELTA: the blocks read, or null when the file vanished. */
async function scanChangedPages(src: SourceEntry, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters, scan: DeltaScan, range?: FileRange): Promise<number | null> {
  const bs = t.blockSize;
  let blocks = 0;
  let any = false;
  for await (const pages of readDataFilePages(src.absPath, src.path, buffer, pageOptions(src, t), counters, range)) {
    any = true;
    scan.content.update(pages);
    await addChangedRuns(scan.writer, pages, scan.firstBlock + blocks, scan.since, bs);
    blocks += pages.length / bs;
  }
  return any || (await exists(src.absPath)) ? blocks : null;
}

/** A page belongs in the delta when it changed since the parent began, or carries no LSN (new or zero pages). */
function isChanged(pages: Buffer, offset: number, since: LsnHalves): boolean {
  const hi = pages.readUInt32LE(offset);
  const lo = pages.readUInt32LE(offset + 4);
  if (hi === 0 && lo === 0) return true;
  return hi > since.hi || (hi === since.hi && lo >= since.lo);
}

/**
 * A file known to the parent that is not read page by page (a non-relation file, or a free-space
 * or visibility-map fork): stored again only when its content changed.
 */
export async function copyIfChanged(src: SourceEntry, t: CopyTarget, parent: FileEntry, buffer: Buffer, counters: PageCheckCounters): Promise<FileEntry | null> {
  const hasher = createContentHasher(parent);
  let size = 0;
  const present = await readPlainFile(src.absPath, buffer, async (chunk) => {
    hasher.update(chunk);
    size += chunk.length;
  });
  if (!present) return null;
  // A relation fork the change map does not speak for (free space, visibility) is read whole
  // here: its pages count as read, as a DELTA's do (and again if it changed: copyFull reads it).
  const blocks = src.kind === 'data' ? Math.floor(size / t.blockSize) : undefined;
  if (blocks !== undefined) counters.pagesRead += blocks;
  if (size === parent.size && hasher.digestHex() === parent.checksum) {
    return { ...entryWithoutData(src, t), size, storage: 'parent', ...parentChecksum(parent), ...(blocks !== undefined ? { blocks } : {}) };
  }
  return copyFull(src, t, buffer, counters);
}

/** Reads a regular file in chunks through `buffer`; false when it does not exist. */
export async function readPlainFile(absPath: string, buffer: Buffer, sink: (chunk: Buffer) => Promise<void>): Promise<boolean> {
  const fh = openSourceFile(absPath);
  if (!fh) return false;
  try {
    for (let position = 0; ; ) {
      const bytesRead = await fh.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return true;
      position += bytesRead;
      await sink(buffer.subarray(0, bytesRead));
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function exists(absPath: string): Promise<boolean> {
  try {
    const fh = await open(absPath, 'r');
    await fh.close();
    return true;
  } catch {
    return false;
  }
}
