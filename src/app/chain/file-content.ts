/**
 * The content of one file of a backup, streamed in order, whatever the chain: a plain read of
 * the stored file when one backup holds it whole, a block-level reconstruction when deltas are
 * involved. Restore, merge and export all read files through here, and the content checksum in
 * the manifest is checked at the end, so a wrong reconstruction can never pass silently.
 */
import type { FileEntry } from '../../core/backup-types.js';
import type { FilePlan, FileSource } from '../../core/file-plan.js';
import { needsReconstruction } from '../../core/file-plan.js';
import { PgkeepError } from '../../errors.js';
import { backupDataKey } from '../../repository/layout.js';
import { readStoredFile } from '../../repository/stored-file.js';
import { createContentHasher, readStoredParts, type PartedSource } from '../../repository/stored-parts.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { reconstructDataFile, type ChainSource, type ReconstructPlan } from './reconstruct-data-file.js';
import { MAX_OPEN_DELTAS, rebuiltThroughScratch } from './rebuild-in-place.js';

export function sourceKey(instance: string, s: FileSource): string {
  return backupDataKey(instance, s.backupId, s.entry.path, s.generation);
}

/**
 * Yields the file's content; throws BACKUP_CORRUPT if its size or checksum differs from the
 * manifest. With `scratch` (a new file's path, asked for only when needed), a file with more page
 * deltas than are read at once is rebuilt through that file (rebuild-in-place.ts), so that a
 * long chain costs no more memory than a short one.
 */
export async function* fileContent(store: ByteStore, instance: string, plan: FilePlan, blockSize: number, scratch?: () => string): AsyncGenerator<Buffer> {
  if (isStoredAsItIs(instance, plan)) {
    // readStoredFile checks the stored checksum, which is here the content checksum: the
    // bytes are hashed once, and only their count is checked here.
    yield* sizedContent(plan.entry, readWhole(store, instance, plan));
    return;
  }
  yield* checkedContent(plan.entry, content(store, instance, plan, blockSize, scratch));
}

/**
 * Whether the file is one uncompressed stored file whose bytes are the content: its stored
 * checksum is then the manifest's content checksum, and checking one checks the other.
 */
function isStoredAsItIs(instance: string, plan: FilePlan): boolean {
  const src = plan.sources[0];
  if (!src || needsReconstruction(plan) || partedSource(instance, src)) return false;
  const e = src.entry;
  return e.compressAlg === 'none' && e.storedChecksum !== null && e.storedChecksum === plan.entry.checksum && e.size === plan.entry.size;
}

/** `chunks` passed on as they come and counted: at the end, BACKUP_CORRUPT if their size differs from `entry`'s. */
async function* sizedContent(entry: FileEntry, chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    yield chunk;
  }
  if (size !== entry.size) throw rebuiltSizeDiffers(entry, size);
}

function rebuiltSizeDiffers(entry: FileEntry, size: number): PgkeepError {
  return new PgkeepError('BACKUP_CORRUPT', `${entry.path} rebuilds to ${size} bytes, the manifest says ${entry.size}`, 'validate the chain with `pgkeep validate`');
}

/**
 * `chunks` passed on as they come, hashed and counted: at the end, BACKUP_CORRUPT if their size
 * or content checksum differs from `entry`'s.
 */
export async function* checkedContent(entry: FileEntry, chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const hasher = createContentHasher(entry);
  let size = 0;
  for await (const chunk of chunks) {
    hasher.update(chunk);
    size += chunk.length;
    yield chunk;
  }
  if (size !== entry.size) throw rebuiltSizeDiffers(entry, size);
  if (entry.checksum !== null && hasher.digestHex() !== entry.checksum) {
    throw new PgkeepError('BACKUP_CORRUPT', `${entry.path} rebuilds to content whose checksum differs from the manifest`, 'validate the chain with `pgkeep validate`');
  }
}

/** True when the plan has more page deltas than are read at once: it is rebuilt in place (rebuild-in-place.ts). */
export function rebuildsInPlace(plan: FilePlan): boolean {
  return plan.sources.filter((s) => s.entry.storage === 'delta').length > MAX_OPEN_DELTAS;
}

function content(store: ByteStore, instance: string, plan: FilePlan, blockSize: number, scratch: (() => string) | undefined): AsyncGenerator<Buffer> {
  if (!needsReconstruction(plan)) return readWhole(store, instance, plan);
  const rebuild = reconstructPlan(instance, plan, blockSize);
  return scratch && rebuildsInPlace(plan) ? rebuiltThroughScratch(store, rebuild, scratch()) : reconstructDataFile(store, rebuild);
}

function readWhole(store: ByteStore, instance: string, plan: FilePlan): AsyncGenerator<Buffer> {
  const src = plan.sources[0];
  if (!src) throw new PgkeepError('INTERNAL', `no source for ${plan.entry.path}`);
  const parted = partedSource(instance, src);
  if (parted) return readStoredParts(store, parted);
  return readStoredFile(store, sourceKey(instance, src), src.entry.compressAlg, { verifyStoredChecksum: src.entry.storedChecksum ?? undefined, lend: true });
}

/** A source stored in parts, as the parts reader wants it; undefined for a plain stored file. */
export function partedSource(instance: string, s: FileSource): PartedSource | undefined {
  const e = s.entry;
  if (e.parts === undefined || e.partSize === undefined) return undefined;
  return { key: sourceKey(instance, s), alg: e.compressAlg, size: e.size, partSize: e.partSize, parts: e.parts };
}

/** The plan of a file that needs reconstruction, as reconstructDataFile and rebuildInPlace take it. */
export function reconstructPlan(instance: string, plan: FilePlan, blockSize: number): ReconstructPlan {
  const sources: ChainSource[] = plan.sources.map((s) => ({
    kind: s.entry.storage === 'delta' ? 'delta' : 'full',
    key: sourceKey(instance, s),
    alg: s.entry.compressAlg,
    storedChecksum: s.entry.storedChecksum,
    blocks: s.entry.blocks ?? Math.floor(s.entry.size / blockSize),
    parted: partedSource(instance, s),
  }));
  return { blockSize, targetBlocks: plan.entry.blocks ?? Math.floor(plan.entry.size / blockSize), sources };
}
