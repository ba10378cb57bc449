/**
 * Where the WAL reader gets segments from: the archive (following a timeline path, so that
 * each segment comes from the timeline recovery would read it from), the WAL a --stream
 * backup carries (`pg_wal/<segment>` entries of its manifest), or the server's own pg_wal while
 * it is backed up. Each opens one segment lazily and streams it in lent chunks (each copied into
 * the reader's page buffer before the next is read), so memory stays the reader's page buffers
 * and one pooled chunk buffer per open segment.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { errnoCode, fromIoError } from '../../errors.js';
import type { SeekableSegment } from '../../postgres/wal/segment-pages.js';
import { segmentFileOnPath, type TimelinePath } from '../../core/timeline-history.js';
import { walFileName } from '../../core/lsn.js';
import { backupDataKey } from '../../repository/layout.js';
import { readStoredFile } from '../../repository/stored-file.js';
import { readArchivedWal, statArchivedWal } from '../../repository/wal-archive.js';
import type { ByteStore } from '../../storage/byte-store.js';

export type SegmentOpener = (segNo: bigint) => Promise<AsyncIterable<Uint8Array> | undefined>;

export function archiveSegments(store: ByteStore, instance: string, path: TimelinePath, segSize: number): SegmentOpener {
  return async (segNo) => {
    const info = await statArchivedWal(store, instance, segmentFileOnPath(path, segNo, segSize));
    return info ? readArchivedWal(store, instance, info, { lend: true }) : undefined;
  };
}

/** The segments stored in a --stream backup, from its manifest entries (on the backup's timeline). */
export function backupSegments(store: ByteStore, backup: BackupRecord, entries: readonly FileEntry[]): SegmentOpener {
  const byPath = new Map(entries.filter((e) => e.kind === 'wal').map((e) => [e.path, e]));
  return (segNo) => {
    const e = byPath.get(`pg_wal/${walFileName(backup.timeline, segNo, backup.walSegSize)}`);
    if (!e) return Promise.resolve(undefined);
    const key = backupDataKey(backup.instance, backup.id, e.path, backup.generation);
    return Promise.resolve(readStoredFile(store, key, e.compressAlg, { verifyStoredChecksum: e.storedChecksum ?? undefined, lend: true }));
  };
}

/** The first opener that has the segment. */
export function firstOf(...openers: SegmentOpener[]): SegmentOpener {
  return async (segNo) => {
    for (const open of openers) {
      const s = await open(segNo);
      if (s) return s;
    }
    return undefined;
  };
}

/**
 * The segments in a server's pg_wal (on a timeline path), as plain files the reader can start
 * anywhere in: what lies before a chunk of WAL is not read. For WAL the server has finished
 * with (before a backup's start). A file recycled meanwhile carries other page addresses, which
 * the reader takes for the end of the WAL, so a caller must treat an early end as "not here".
 */
export function serverWalSegments(pgdata: string, path: TimelinePath, segSize: number): SegmentOpener {
  return async (segNo) => {
    const file = join(pgdata, 'pg_wal', segmentFileOnPath(path, segNo, segSize));
    try {
      return new SegmentFile(await open(file, 'r'));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw fromIoError(e, 'open', file);
    }
  };
}

/** Bytes per read of a segment file: eight WAL pages. */
const SEGMENT_FILE_CHUNK = 64 * 1024;

/** A segment file read in chunks from a position that seekTo moves; closed at its end or on return(). */
class SegmentFile implements SeekableSegment, AsyncIterator<Uint8Array> {
  private readonly buffer = Buffer.allocUnsafe(SEGMENT_FILE_CHUNK);
  private position = 0;
  private closed = false;

  constructor(private readonly fh: FileHandle) {}

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  seekTo(offset: number): void {
    this.position = offset;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (!this.closed) {
      // The reader copies each chunk out before it asks for the next, so one buffer serves.
      const { bytesRead } = await this.fh.read(this.buffer, 0, this.buffer.length, this.position);
      if (bytesRead > 0) {
        this.position += bytesRead;
        return { done: false, value: this.buffer.subarray(0, bytesRead) };
      }
    }
    return this.return();
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close();
    }
    return { done: true, value: undefined };
  }
}
