/**
 * Phase 5 of a backup (take-backup.ts): stop the non-exclusive backup and store what the stop
 * call returns, backup_label (without which the copy would start as a crashed primary) and
 * tablespace_map, as the backup's own files.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { timelineFromLabel, type BackupSession } from '../../postgres/backup-session.js';
import { backupDataKey } from '../../repository/layout.js';
import { StoredFileWriter } from '../../repository/stored-file.js';
import type { CopyTarget } from './copy-entry.js';

/** Stops the backup, sets the record's stop LSN (and timeline, which a standby's label names), and returns the stored files. */
export async function stopBackup(session: BackupSession, target: CopyTarget, record: BackupRecord): Promise<FileEntry[]> {
  const stop = await session.stopBackup();
  record.stopLsn = stop.stopLsn;
  record.timeline = timelineFromLabel(stop.labelFile) ?? record.timeline;
  const entries = [await storeBytes(target, 'backup_label', Buffer.from(stop.labelFile), 0o600)];
  if (stop.tablespaceMap.length > 0) entries.push(await storeBytes(target, 'tablespace_map', Buffer.from(stop.tablespaceMap), 0o600));
  return entries;
}

async function storeBytes(t: CopyTarget, relPath: string, bytes: Buffer, mode: number): Promise<FileEntry> {
  const w = await StoredFileWriter.open(t.store, backupDataKey(t.instance, t.backupId, relPath), t.compressAlg, t.compressLevel);
  await w.write(bytes);
  const r = await w.finish();
  return {
    path: relPath, kind: 'file', mode, mtimeMs: Date.now(), size: r.size, storage: 'full', storedSize: r.storedSize,
    storedChecksum: r.storedChecksum, checksum: r.checksum, compressAlg: t.compressAlg, uid: t.uid, gid: t.gid,
  };
}
