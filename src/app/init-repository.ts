import { join } from 'node:path';
import { openCatalog } from '../catalog/catalog.js';
import { initRepositoryRoot } from '../repository/format-file.js';
import { CATALOG_FILE } from '../repository/layout.js';
import { givePath, ownerForNewPaths } from '../storage/repository-owner.js';

/**
 * Creates a repository: the versioned root, then the catalog with every migration applied. Run
 * as root in an empty directory that belongs to another user, the catalog is given to that user
 * too (SQLite creates it as its caller; see storage/repository-owner.ts).
 */
export async function initRepository(root: string): Promise<{ id: string; version: number }> {
  const format = await initRepositoryRoot(root);
  const catalog = join(root, CATALOG_FILE);
  openCatalog(catalog).close();
  await givePath(ownerForNewPaths(root), catalog);
  return format;
}
