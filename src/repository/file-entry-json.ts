/**
 * The JSON form of one manifest FileEntry. Fields are written in a fixed order, optional ones
 * only when set; reading checks every field and that the path cannot leave the data directory.
 */
import { COMPRESS_ALGS, type FileEntry, type FileKind, type FileStorage, type StoredPart } from '../core/backup-types.js';
import { isPgkeepError } from '../errors.js';
import { corruptFile, JsonFields } from './json-fields.js';
import { assertSafeRelativePath } from './layout.js';
import { partsProblem } from './stored-parts.js';

const KINDS: readonly FileKind[] = ['data', 'file', 'dir', 'symlink', 'wal'];
const STORAGES: readonly FileStorage[] = ['full', 'delta', 'parent', 'none'];
const CHECKSUM = /^[0-9a-f]{16}$/;

export function fileEntryToJson(e: FileEntry): Record<string, unknown> {
  const o: Record<string, unknown> = {
    path: e.path,
    kind: e.kind,
    mode: e.mode,
    mtimeMs: e.mtimeMs,
    size: e.size,
    storage: e.storage,
    storedSize: e.storedSize,
    storedChecksum: e.storedChecksum,
    checksum: e.checksum,
    compressAlg: e.compressAlg,
  };
  if (e.blocks !== undefined) o.blocks = e.blocks;
  if (e.deltaBlocks !== undefined) o.deltaBlocks = e.deltaBlocks;
  if (e.linkTarget !== undefined) o.linkTarget = e.linkTarget;
  if (e.uid !== undefined) o.uid = e.uid;
  if (e.gid !== undefined) o.gid = e.gid;
  if (e.partSize !== undefined) o.partSize = e.partSize;
  if (e.parts !== undefined) o.parts = e.parts.map((p) => ({ checksum: p.checksum, storedSize: p.storedSize, storedChecksum: p.storedChecksum }));
  return o;
}

export function fileEntryFromJson(obj: Record<string, unknown>, source: string): FileEntry {
  const f = new JsonFields(obj, source);
  const path = f.string('path');
  try {
    assertSafeRelativePath(path);
  } catch (e) {
    if (isPgkeepError(e)) throw corruptFile(source, e.message);
    throw e;
  }
  const entry: FileEntry = {
    path,
    kind: f.oneOf('kind', KINDS),
    mode: f.count('mode'),
    mtimeMs: f.number('mtimeMs'),
    size: f.count('size'),
    storage: f.oneOf('storage', STORAGES),
    storedSize: f.count('storedSize'),
    storedChecksum: checksumOrNull(f, 'storedChecksum'),
    checksum: checksumOrNull(f, 'checksum'),
    compressAlg: f.oneOf('compressAlg', COMPRESS_ALGS),
  };
  const blocks = f.optionalCount('blocks');
  const deltaBlocks = f.optionalCount('deltaBlocks');
  const linkTarget = f.optionalString('linkTarget');
  if (blocks !== undefined) entry.blocks = blocks;
  if (deltaBlocks !== undefined) entry.deltaBlocks = deltaBlocks;
  if (linkTarget !== undefined) entry.linkTarget = linkTarget;
  const uid = f.optionalCount('uid');
  const gid = f.optionalCount('gid');
  if (uid !== undefined) entry.uid = uid;
  if (gid !== undefined) entry.gid = gid;
  const partSize = f.optionalCount('partSize');
  if (partSize !== undefined) entry.partSize = partSize;
  if (obj.parts !== undefined) entry.parts = partsFromJson(obj.parts, source);
  const problem = partsProblem(entry);
  if (problem !== undefined) throw corruptFile(source, `${path} ${problem}`);
  if (entry.parts !== undefined && entry.storage !== 'full') throw corruptFile(source, `${path} has parts but storage ${entry.storage}`);
  return entry;
}

function partsFromJson(v: unknown, source: string): StoredPart[] {
  if (!Array.isArray(v)) throw corruptFile(source, 'field "parts" should be an array');
  return v.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw corruptFile(source, `parts[${i}] should be an object`);
    const f = new JsonFields(item as Record<string, unknown>, `${source} parts[${i}]`);
    const checksum = checksumOrNull(f, 'checksum');
    const storedChecksum = checksumOrNull(f, 'storedChecksum');
    if (checksum === null || storedChecksum === null) throw corruptFile(source, `parts[${i}] needs both checksums`);
    return { checksum, storedSize: f.count('storedSize'), storedChecksum };
  });
}

function checksumOrNull(f: JsonFields, name: string): string | null {
  const v = f.nullableString(name);
  if (v !== null && !CHECKSUM.test(v)) throw corruptFile(f.source, `field "${name}" should be 16 hex digits, found "${v}"`);
  return v;
}
