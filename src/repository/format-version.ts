/**
 * The `formatVersion` check shared by the repository's JSON files: older or equal versions are
 * read, newer ones refused, so that an old pgkeep never misreads what a new one wrote.
 */
import { PgkeepError } from '../errors.js';
import { corruptFile } from './json-fields.js';

export const FILE_FORMAT_VERSION = 1;

/**
 * Manifests: 2 when an entry is stored in parts (or carries a part-tree checksum), which a
 * version-1 reader would misread; 1 otherwise, so that other backups stay readable by it.
 */
export const MANIFEST_FORMAT_VERSION = 2;

export function checkFormatVersion(obj: Record<string, unknown>, source: string, newest = FILE_FORMAT_VERSION): void {
  const v = obj.formatVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw corruptFile(source, 'missing or invalid formatVersion');
  if (v > newest) {
    throw new PgkeepError('REPO_FORMAT_UNSUPPORTED', `${source} has format version ${v}, this pgkeep reads up to ${newest}`, 'upgrade pgkeep');
  }
}
