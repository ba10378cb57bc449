/**
 * The archive commands run once per WAL file under PostgreSQL, so they open only what they need:
 * the repository root and the instance's instance.json (for its system identifier and
 * compression), not the SQLite catalog.
 */
import { readInstanceConfig, type InstanceConfig } from '../../repository/instance-config.js';
import { openRepositoryRoot } from '../../repository/format-file.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { PosixStore } from '../../storage/posix-store.js';

export interface ArchiveContext {
  root: string;
  store: ByteStore;
  instance: InstanceConfig;
}

export async function openArchive(root: string, instance: string): Promise<ArchiveContext> {
  await openRepositoryRoot(root);
  const store = new PosixStore(root);
  return { root, store, instance: await readInstanceConfig(store, instance) };
}
