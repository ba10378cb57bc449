/**
 * The keys of a backup's stored files, named by their manifest entries. A backup's copy commits
 * them without an fsync (ByteStore.deferringSync); these are the keys it makes durable
 * (ByteStore.syncObjects) before a journal batch names them and before the manifest does.
 */
import type { FileEntry } from '../../core/backup-types.js';
import { backupDataKey } from '../../repository/layout.js';
import { storedFileKeys } from '../../repository/stored-parts.js';

export function storedDataKeys(instance: string, backupId: string, entries: readonly FileEntry[]): string[] {
  const keys: string[] = [];
  for (const e of entries) {
    if (e.storedChecksum === null && e.parts === undefined) continue;
    keys.push(...storedFileKeys(backupDataKey(instance, backupId, e.path), e));
  }
  return keys;
}
