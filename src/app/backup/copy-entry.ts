/**
 * Copies one source entry of the data directory into the backup, returning its manifest entry
 * (or null when the file vanished while the backup ran: it was dropped, replay handles it).
 */
import { open } from 'node:fs/promises';
import type { CompressAlg, FileEntry } from '../../core/backup-types.js';
import { errnoCode, fromIoError } from '../../errors.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import { RELSEG_BLOCKS, parseRelationPath } from '../../postgres/relation-file.js';
import { backupDataKey } from '../../repository/layout.js';
import { StoredFileWriter } from '../../repository/stored-file.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { readDataFilePages, type PageCheckCounters } from './read-data-file.js';

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

/**
 * Streams a file into the repository through `buffer` (reused by the caller's worker).
 * Data files go through page verification; everything else is copied as bytes.
 */
export async function copyFileEntry(src: SourceEntry, t: CopyTarget, buffer: Buffer, counters: PageCheckCounters): Promise<FileEntry | null> {
  const key = backupDataKey(t.instance, t.backupId, src.path);
  const writer = await StoredFileWriter.open(t.store, key, t.compressAlg, t.compressLevel);
  let vanished = false;
  try {
    if (src.kind === 'data') {
      const rel = parseRelationPath(src.path);
      const firstBlock = (rel?.segNo ?? 0) * RELSEG_BLOCKS;
      let any = false;
      const opts = { blockSize: t.blockSize, checksumsEnabled: t.checksumsEnabled, startLsn: t.startLsn, verify: t.verifyPages, firstBlock };
      for await (const pages of readDataFilePages(src.absPath, src.path, buffer, opts, counters)) {
        any = true;
        await writer.write(pages);
      }
      if (!any) vanished = !(await exists(src.absPath));
    } else {
      vanished = !(await copyPlainFile(src.absPath, buffer, (chunk) => writer.write(chunk)));
    }
    if (vanished) {
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

/** Copies a regular file in chunks; false when it does not exist. */
export async function copyPlainFile(absPath: string, buffer: Buffer, sink: (chunk: Buffer) => Promise<void>): Promise<boolean> {
  let fh;
  try {
    fh = await open(absPath, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw fromIoError(e, 'open', absPath);
  }
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, null).catch((e: unknown) => {
        throw fromIoError(e, 'read', absPath);
      });
      if (bytesRead === 0) return true;
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
