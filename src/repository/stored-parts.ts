/**
 * Files stored in parts: a large relation segment copied by several workers at once.
 *
 * Design note. One worker per file lets a single 1 GB segment serialize the end of a run. So a
 * large file is cut into parts of `partSize` bytes (the last shorter), each stored as its own
 * stored file `data/<path>.part<i>` with its own checksums, so that parts can be written, read
 * and checked independently and in parallel. xxh64 cannot be combined from pieces, so the
 * entry's `checksum` is the part-tree form: xxh64 of the parts' checksums written one after the
 * other as hex text; likewise `storedChecksum` over the parts' stored checksums. Whatever reads a
 * file whose entry has a `partSize` checks its content with `createContentHasher(entry)`.
 * Format: docs/repository-format.md, "Parts".
 */
import type { CompressAlg, FileEntry, StoredPart } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import type { ByteStore } from '../storage/byte-store.js';
import { createHasher, hashHex, type Hasher } from './hash.js';
import { readStoredFile } from './stored-file-reader.js';
import { STORED_CHUNK_SIZE } from './stored-file-format.js';

/** Bytes per part: a multiple of every block size and of the 1 MiB frame, small enough to balance -j 2 over one 1 GB segment. */
export const PART_BYTES = 128 * 1024 * 1024;

/** The stored-file key of part `index` of the file whose whole-file key is `key`. */
export function partKey(key: string, index: number): string {
  return `${key}.part${index}`;
}

/**
 * The stored files of an entry whose whole-file key is `key` (a data key, or the entry's path
 * for a walk of `data/`): its parts' keys when it is stored in parts, else `key` itself.
 */
export function storedFileKeys(key: string, entry: Pick<FileEntry, 'parts'>): string[] {
  return entry.parts ? entry.parts.map((_p, i) => partKey(key, i)) : [key];
}

/** [offset, length] of each part of a file of `size` bytes. */
export function partRanges(size: number, partSize: number): { offset: number; length: number }[] {
  const out: { offset: number; length: number }[] = [];
  for (let offset = 0; offset < size; offset += partSize) out.push({ offset, length: Math.min(partSize, size - offset) });
  return out;
}

/** The part-tree checksum: xxh64 of the parts' 16-digit checksums, concatenated. */
export function partTreeChecksum(checksums: readonly string[]): string {
  return hashHex(Buffer.from(checksums.join(''), 'ascii'));
}

/**
 * The content hasher matching an entry's `checksum`: plain xxh64, or with `partSize` the
 * part-tree form, cutting the stream at part boundaries whatever the chunk sizes.
 */
export function createContentHasher(entry: Pick<FileEntry, 'partSize'>): Hasher {
  const partSize = entry.partSize;
  if (partSize === undefined) return createHasher();
  const digests: string[] = [];
  let part = createHasher();
  let filled = 0;
  return {
    update(bytes: Uint8Array): void {
      let off = 0;
      while (off < bytes.length) {
        const n = Math.min(partSize - filled, bytes.length - off);
        part.update(bytes.subarray(off, off + n));
        filled += n;
        off += n;
        if (filled === partSize) {
          digests.push(part.digestHex());
          part = createHasher();
          filled = 0;
        }
      }
    },
    digestHex(): string {
      return partTreeChecksum(filled > 0 || digests.length === 0 ? [...digests, part.digestHex()] : digests);
    },
  };
}

/**
 * Checks what a manifest says of a parted entry before anything is read: the part count
 * matches the size, and the entry's checksums are the tree of its parts'. Returns the problem.
 */
export function partsProblem(entry: FileEntry): string | undefined {
  if (entry.parts === undefined) return undefined;
  if (entry.partSize === undefined || entry.partSize <= 0 || entry.partSize % STORED_CHUNK_SIZE !== 0) return 'has parts but no valid partSize';
  const expected = partRanges(entry.size, entry.partSize).length;
  if (entry.parts.length !== expected || expected < 2) return `has ${entry.parts.length} parts, its size needs ${expected}`;
  if (entry.parts.reduce((n, p) => n + p.storedSize, 0) !== entry.storedSize) return 'stored size differs from the sum of its parts';
  if (entry.checksum !== partTreeChecksum(entry.parts.map((p) => p.checksum))) return 'content checksum is not the tree of its parts';
  if (entry.storedChecksum !== partTreeChecksum(entry.parts.map((p) => p.storedChecksum))) return 'stored checksum is not the tree of its parts';
  return undefined;
}

export interface PartedSource {
  /** The whole-file key; parts are at partKey(key, i). */
  key: string;
  alg: CompressAlg;
  size: number;
  partSize: number;
  parts: readonly StoredPart[];
}

/**
 * The content of a parted file, part after part, each part's stored and content checksums and
 * length verified as it ends (BACKUP_CORRUPT naming the part otherwise).
 */
export async function* readStoredParts(store: ByteStore, src: PartedSource): AsyncGenerator<Buffer> {
  const ranges = partRanges(src.size, src.partSize);
  if (ranges.length !== src.parts.length) throw corrupt(src.key, `has ${src.parts.length} parts in its manifest entry, its size needs ${ranges.length}`);
  for (let i = 0; i < ranges.length; i++) {
    yield* readStoredPart(store, src, i);
  }
}

/** One part's content, verified like readStoredParts. */
export async function* readStoredPart(store: ByteStore, src: PartedSource, index: number): AsyncGenerator<Buffer> {
  const part = src.parts[index];
  const range = partRanges(src.size, src.partSize)[index];
  if (!part || !range) throw corrupt(src.key, `has no part ${index}`);
  const key = partKey(src.key, index);
  let got = 0;
  for await (const chunk of readStoredFile(store, key, src.alg, { verifyStoredChecksum: part.storedChecksum, verifyChecksum: part.checksum, lend: true })) {
    got += chunk.length;
    yield chunk;
  }
  if (got !== range.length) throw corrupt(key, `holds ${got} bytes, part ${index} of ${src.size} bytes should hold ${range.length}`);
}

function corrupt(key: string, what: string): PgkeepError {
  return new PgkeepError('BACKUP_CORRUPT', `stored file ${key} ${what}`, 'run `pgkeep validate` to find every damaged backup');
}
