/**
 * Writes one file of a restore: its content rebuilt from the chain (app/chain/file-content.ts)
 * into a new file under the target directory, with its mode. Files are not fsynced here, which
 * made every writer wait for the disk after each file: the restore hands each written file to a
 * queue that fsyncs it in the background (restore-backup.ts, storage's FileSyncQueue). A file with more page
 * deltas than are read at once is rebuilt in the new file itself (app/chain/rebuild-in-place.ts)
 * and read back for its checksum, so that a long chain costs no more memory than a short one.
 *
 * With -j N (N >= 2) and enough bytes, files are written by the main thread (slot 0 of
 * forEachParallel) and a pool of N - 1 worker threads (restore-worker.ts), so that decompression bookkeeping, page-delta reconstruction and the
 * content checksum use every core; the caller still learns each file's completion on its own
 * thread. A file whose content is transformed (tablespace_map under -T) is written in-process:
 * a transform is a function and cannot travel to a worker.
 */
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FileEntry } from '../../core/backup-types.js';
import { needsReconstruction, type FilePlan } from '../../core/file-plan.js';
import { fromIoError, PgkeepError } from '../../errors.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { PosixStore } from '../../storage/posix-store.js';
import { writeBehind } from './write-behind.js';
import { checkedContent, fileContent, partedSource, rebuildsInPlace, reconstructPlan } from '../chain/file-content.js';
import { readBack, rebuildInPlace } from '../chain/rebuild-in-place.js';
import { partRanges, readStoredPart } from '../../repository/stored-parts.js';
import { workerEntry, WorkerPool } from '../worker-pool.js';

/** What a restore worker needs besides the job: where the repository is and how to read its files. */
export interface RestoreWorkerData {
  root: string;
  instance: string;
  blockSize: number;
}

export interface RestoreFileJob {
  plan: FilePlan;
  dest: string;
  /** One part of a file stored in parts (restorablePartCount), written in place beside the others. */
  part?: number;
}

export interface RestoreFileWriter {
  /** Writes the plan's file under `dest`; returns the bytes written. */
  write(plan: FilePlan, dest: string, slot: number, transform?: (b: Buffer) => Buffer): Promise<number>;
  /** Writes part `part` of a file stored in parts, in place (see writeRestoredPart). */
  writePart(plan: FilePlan, dest: string, slot: number, part: number): Promise<number>;
  /** Ends the worker threads, if any. */
  close(): Promise<void>;
}

/** Below this many bytes to write, threads cost more to start than they save. */
const WORKER_THRESHOLD_BYTES = 32 * 1024 * 1024;

export function openRestoreWriter(store: ByteStore, backup: { instance: string; blockSize: number }, threads: number, entries: readonly FileEntry[]): RestoreFileWriter {
  const local = (plan: FilePlan, dest: string, _slot?: number, transform?: (b: Buffer) => Buffer) => writeRestoredFile(store, backup.instance, backup.blockSize, plan, dest, transform);
  const localPart = (plan: FilePlan, dest: string, _slot: number, part: number) => writeRestoredPart(store, backup.instance, plan, dest, part);
  const totalBytes = entries.reduce((n, e) => n + e.size, 0);
  const entry = workerEntry(import.meta.url, './restore-worker.js');
  if (threads < 2 || entries.length < 2 || totalBytes < WORKER_THRESHOLD_BYTES || !entry || !(store instanceof PosixStore)) {
    return { write: local, writePart: localPart, close: () => Promise.resolve() };
  }
  // The main thread is one of the `threads` writers (slot 0): one isolate fewer, in memory and start-up.
  const pool = WorkerPool.start<RestoreFileJob, number>(entry, Math.min(threads, entries.length) - 1, { root: store.root, instance: backup.instance, blockSize: backup.blockSize } satisfies RestoreWorkerData);
  return {
    write: (plan, dest, slot, transform) => (transform || slot === 0 ? local(plan, dest, slot, transform) : pool.run({ plan, dest })),
    writePart: (plan, dest, slot, part) => (slot === 0 ? localPart(plan, dest, slot, part) : pool.run({ plan, dest, part })),
    close: () => pool.close(),
  };
}

/**
 * How many parts of this file can be written side by side: the part count when the file is one
 * backup's stored parts as they are (no page deltas over them) and the entry restored checks
 * with those parts' checksums; 0 when it must be written whole, in order (its content checksum
 * is then checked over the whole stream by fileContent).
 */
export function restorablePartCount(instance: string, plan: FilePlan): number {
  const src = plan.sources[0];
  if (needsReconstruction(plan) || !src) return 0;
  const parted = partedSource(instance, src);
  const e = plan.entry;
  if (!parted || e.partSize !== parted.partSize || e.checksum !== src.entry.checksum || e.size !== parted.size) return 0;
  return parted.parts.length;
}

/**
 * Writes part `index` of a file stored in parts at its offset in the target file, created if
 * this is the first part to get there (every part opens it without truncating); the part's
 * stored and content checksums and length are verified as it is read. Returns the bytes written.
 */
export async function writeRestoredPart(store: ByteStore, instance: string, plan: FilePlan, dest: string, index: number): Promise<number> {
  const e = plan.entry;
  const src = plan.sources[0];
  const parted = src ? partedSource(instance, src) : undefined;
  const range = parted ? partRanges(parted.size, parted.partSize)[index] : undefined;
  if (!parted || !range) throw new PgkeepError('INTERNAL', `${e.path} has no stored part ${index}`);
  // Every part opens the file without truncating it; the first to get there creates it.
  return writeTargetFile(join(dest, e.path), constants.O_WRONLY | constants.O_CREAT, e.mode, range.offset, readStoredPart(store, parted, index));
}

/** Writes one file whole; fsyncs it only with `sync` (pg_control, written last, on its own). */
export async function writeRestoredFile(store: ByteStore, instance: string, blockSize: number, plan: FilePlan, dest: string, transform?: (b: Buffer) => Buffer, sync = false): Promise<number> {
  const e = plan.entry;
  const path = join(dest, e.path);
  if (!transform && rebuildsInPlace(plan)) {
    // Rebuilt in the new file itself, then read back through the same size and checksum check
    // as a streamed file.
    return withTargetFile(path, 'wx+', e.mode, sync, async (fh) => {
      const size = await rebuildInPlace(store, reconstructPlan(instance, plan, blockSize), fh, path);
      for await (const _chunk of checkedContent(e, readBack(fh, path))) {
        // hashed and counted by checkedContent
      }
      return size;
    });
  }
  const content = fileContent(store, instance, plan, blockSize);
  return writeTargetFile(path, 'wx', e.mode, 0, transform ? transformed(content, transform) : content, sync);
}

/** Only tablespace_map is transformed: a few lines, read whole. */
async function* transformed(content: AsyncIterable<Buffer>, transform: (b: Buffer) => Buffer): AsyncGenerator<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of content) parts.push(Buffer.from(chunk));
  yield transform(Buffer.concat(parts));
}

/**
 * Writes `chunks` into the file at `path` from `position` on (writeBehind), sets its mode and
 * fsyncs it if told to. Returns the bytes written.
 */
function writeTargetFile(path: string, flags: string | number, mode: number, position: number, chunks: AsyncIterable<Buffer>, sync = false): Promise<number> {
  return withTargetFile(path, flags, mode, sync, (fh) => writeBehind(fh, chunks, position));
}

/**
 * Opens the file at `path` (its directory made if need be), lets `fill` write it, then sets its
 * mode and fsyncs it if told to; I/O errors name the file. Returns what `fill` returns.
 */
async function withTargetFile(path: string, flags: string | number, mode: number, sync: boolean, fill: (fh: FileHandle) => Promise<number>): Promise<number> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let fh;
  try {
    fh = await open(path, flags, mode & 0o777);
  } catch (err) {
    throw fromIoError(err, 'create', path);
  }
  try {
    const n = await fill(fh);
    await fh.chmod(mode & 0o7777);
    if (sync) await fh.sync();
    return n;
  } catch (err) {
    throw fromIoError(err, 'write', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
