/**
 * Writes one file of a restore: its content rebuilt from the chain (app/chain/file-content.ts)
 * into a new file under the target directory, with its mode, fsynced.
 *
 * With -j N (N >= 2) and enough bytes, files are written by the main thread (slot 0 of
 * forEachParallel) and a pool of N - 1 worker threads (restore-worker.ts), so that decompression bookkeeping, page-delta reconstruction and the
 * content checksum use every core; the caller still learns each file's completion on its own
 * thread. A file whose content is transformed (tablespace_map under -T) is written in-process:
 * a transform is a function and cannot travel to a worker.
 */
import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FileEntry } from '../../core/backup-types.js';
import type { FilePlan } from '../../core/file-plan.js';
import { fromIoError } from '../../errors.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { PosixStore } from '../../storage/posix-store.js';
import { fileContent } from '../chain/file-content.js';
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
}

export interface RestoreFileWriter {
  /** Writes the plan's file under `dest`; returns the bytes written. */
  write(plan: FilePlan, dest: string, slot: number, transform?: (b: Buffer) => Buffer): Promise<number>;
  /** Ends the worker threads, if any. */
  close(): Promise<void>;
}

/** Below this many bytes to write, threads cost more to start than they save. */
const WORKER_THRESHOLD_BYTES = 32 * 1024 * 1024;

export function openRestoreWriter(store: ByteStore, backup: { instance: string; blockSize: number }, threads: number, entries: readonly FileEntry[]): RestoreFileWriter {
  const local = (plan: FilePlan, dest: string, _slot?: number, transform?: (b: Buffer) => Buffer) => writeRestoredFile(store, backup.instance, backup.blockSize, plan, dest, transform);
  const totalBytes = entries.reduce((n, e) => n + e.size, 0);
  const entry = workerEntry(import.meta.url, './restore-worker.js');
  if (threads < 2 || entries.length < 2 || totalBytes < WORKER_THRESHOLD_BYTES || !entry || !(store instanceof PosixStore)) {
    return { write: local, close: () => Promise.resolve() };
  }
  // The main thread is one of the `threads` writers (slot 0): one isolate fewer, in memory and start-up.
  const pool = WorkerPool.start<RestoreFileJob, number>(entry, Math.min(threads, entries.length) - 1, { root: store.root, instance: backup.instance, blockSize: backup.blockSize } satisfies RestoreWorkerData);
  return {
    write: (plan, dest, slot, transform) => (transform || slot === 0 ? local(plan, dest, slot, transform) : pool.run({ plan, dest })),
    close: () => pool.close(),
  };
}

export async function writeRestoredFile(store: ByteStore, instance: string, blockSize: number, plan: FilePlan, dest: string, transform?: (b: Buffer) => Buffer): Promise<number> {
  const e = plan.entry;
  const path = join(dest, e.path);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let fh;
  try {
    fh = await open(path, 'wx', e.mode & 0o777);
  } catch (err) {
    throw fromIoError(err, 'create', path);
  }
  let written = 0;
  try {
    const content = fileContent(store, instance, plan, blockSize);
    if (transform) {
      // Only tablespace_map is transformed: a few lines, read whole.
      const parts: Buffer[] = [];
      for await (const chunk of content) parts.push(Buffer.from(chunk));
      const out = transform(Buffer.concat(parts));
      await fh.write(out);
      written = out.length;
    } else {
      for await (const chunk of content) {
        await fh.write(chunk, 0, chunk.length, written);
        written += chunk.length;
      }
    }
    await fh.chmod(e.mode & 0o7777);
    await fh.sync();
  } catch (err) {
    throw fromIoError(err, 'write', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
  return written;
}
