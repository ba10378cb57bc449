/**
 * The keys of a backup's stored files in generation `generation`, named by their manifest
 * entries. A backup's copy and a merge's build write them without an fsync
 * (ByteStore.deferringSync); these are the keys they make durable (ByteStore.syncObjects) before a
 * journal batch or a manifest names them.
 */
import type { FileEntry } from '../core/backup-types.js';
import { backupDataKey } from '../repository/layout.js';
import { storedFileKeys } from '../repository/stored-parts.js';

export function storedDataKeys(instance: string, backupId: string, entries: readonly FileEntry[], generation = 0): string[] {
  const keys: string[] = [];
  for (const e of entries) {
    if (e.storage !== 'full' && e.storage !== 'delta') continue;
    keys.push(...storedFileKeys(backupDataKey(instance, backupId, e.path, generation), e));
  }
  return keys;
}
