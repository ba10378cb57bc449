/**
 * Where the WAL reader gets segments from: the archive (following a timeline path, so that
 * each segment comes from the timeline recovery would read it from), or the WAL a --stream
 * backup carries (`pg_wal/<segment>` entries of its manifest). Each opens one segment lazily
 * and streams it, so memory stays the reader's page buffers.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
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
    return info ? readArchivedWal(store, instance, info) : undefined;
  };
}

/** The segments stored in a --stream backup, from its manifest entries (on the backup's timeline). */
export function backupSegments(store: ByteStore, backup: BackupRecord, entries: readonly FileEntry[]): SegmentOpener {
  const byPath = new Map(entries.filter((e) => e.kind === 'wal').map((e) => [e.path, e]));
  return (segNo) => {
    const e = byPath.get(`pg_wal/${walFileName(backup.timeline, segNo, backup.walSegSize)}`);
    if (!e) return Promise.resolve(undefined);
    const key = backupDataKey(backup.instance, backup.id, e.path, backup.generation);
    return Promise.resolve(readStoredFile(store, key, e.compressAlg, { verifyStoredChecksum: e.storedChecksum ?? undefined }));
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
