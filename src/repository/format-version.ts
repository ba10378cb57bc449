/**
 * The `formatVersion` check shared by the repository's JSON files: older or equal versions are
 * read, newer ones refused, so that an old pgkeep never misreads what a new one wrote.
 */
import { PgkeepError } from '../errors.js';
import { corruptFile } from './json-fields.js';

export const FILE_FORMAT_VERSION = 1;

export function checkFormatVersion(obj: Record<string, unknown>, source: string): void {
  const v = obj.formatVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw corruptFile(source, 'missing or invalid formatVersion');
  if (v > FILE_FORMAT_VERSION) {
    throw new PgkeepError('REPO_FORMAT_UNSUPPORTED', `${source} has format version ${v}, this pgkeep reads up to ${FILE_FORMAT_VERSION}`, 'upgrade pgkeep');
  }
}
