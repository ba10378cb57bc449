import { join } from 'node:path';
import { openCatalog } from '../catalog/catalog.js';
import { initRepositoryRoot } from '../repository/format-file.js';
import { CATALOG_FILE } from '../repository/layout.js';

/** Creates a repository: the versioned root, then the catalog with every migration applied. */
export async function initRepository(root: string): Promise<{ id: string; version: number }> {
  const format = await initRepositoryRoot(root);
  openCatalog(join(root, CATALOG_FILE)).close();
  return format;
}
