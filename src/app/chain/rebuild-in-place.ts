/**
 * Rebuild one relation file into a file on disk when its chain holds more page deltas than are
 * read at once: a restore through a long chain of incremental backups.
 *
 * reconstructDataFile reads every delta of a file side by side, each through its own chunk of up
 * to 1 MiB, so its memory grows with the number of deltas: about 381 MiB for a file changed by
 * each of 381 backups. Here the oldest sources (the base and up to `maxOpen` deltas) are streamed
 * through it into the file, which then holds the file as the newest of them saw it; the newer
 * deltas are then applied one at a time, oldest first, each page written at its place, as
 * pg_probackup restores a chain. Memory stays at `maxOpen` chunks whatever the chain's length.
 *
 * Why this gives the same bytes (docs/restore-planning.md, "The rule"): for sources numbered
 * newest first, block b comes from the newest source i that stores it with b < limit_i, where
 * limit_i = min(blocks_0 .. blocks_i); zeros otherwise. Streaming sources j..n-1 with target
 * blocks_j applies the limits min(blocks_j .. blocks_i), which leaves out only the further cut of
 * the newer sources, min(blocks_0 .. blocks_j): the blocks of that content at or past it are
 * zeroed. Every newer delta i then writes its pages below its own limit_i, which is at least that
 * cut, over whatever an older source left there. Blocks no source qualifies for stay zeros.
 *
 * Every source is still read to its end and verified (stored checksum, block count). The caller
 * checks the written file's content checksum, since no stream passes through it here.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { fromIoError } from '../../errors.js';
import { PageDeltaReader } from '../../repository/page-delta.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { writeFully } from '../../storage/write-fully.js';
import { checkPlan, corrupt, deltaLimits, reconstructDataFile, type ReconstructPlan } from './reconstruct-data-file.js';

/** Deltas read side by side at most: 1 MiB each, or a little more. */
export const MAX_OPEN_DELTAS = 8;

/** Bytes of zeros written at once. */
const ZERO_PIECE = 1024 * 1024;

/** How many of the plan's sources are page deltas. */
function deltaCount(plan: ReconstructPlan): number {
  return plan.sources.filter((s) => s.kind === 'delta').length;
}

/**
 * Writes the plan's content into `fh` (`path` names it in errors), from offset 0, and sets its
 * length; returns the bytes the file holds. The file must be new or empty.
 */
export async function rebuildInPlace(store: ByteStore, plan: ReconstructPlan, fh: FileHandle, path: string, maxOpen = MAX_OPEN_DELTAS): Promise<number> {
  checkPlan(plan);
  const bs = plan.blockSize;
  const target = plan.targetBlocks;
  const n = plan.sources.length;
  const hasBase = plan.sources[n - 1]?.kind === 'full';
  // The oldest sources that are streamed: all of them when there are few enough deltas.
  const j = deltaCount(plan) <= maxOpen ? 0 : n - (hasBase ? maxOpen + 1 : maxOpen);
  const older: ReconstructPlan = j === 0 ? plan : { blockSize: bs, targetBlocks: plan.sources[j]!.blocks, sources: plan.sources.slice(j) };
  const io = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw fromIoError(e, what, path);
    }
  };

  let written = 0;
  for await (const chunk of reconstructDataFile(store, older)) {
    const at = written;
    await io('write', () => writeFully(fh, chunk, at));
    written += chunk.length;
  }
  if (j === 0) return written;

  // Blocks of that content that a newer backup cut off are zeros, unless a newer delta writes them.
  const limits = deltaLimits(plan);
  const cut = limits[j]!;
  const zeroTo = Math.min(older.targetBlocks, target);
  if (cut < zeroTo) {
    const zeros = Buffer.alloc(Math.min(ZERO_PIECE, (zeroTo - cut) * bs));
    for (let off = cut * bs; off < zeroTo * bs; off += zeros.length) {
      const len = Math.min(zeros.length, zeroTo * bs - off);
      const at = off;
      await io('write', () => writeFully(fh, zeros.subarray(0, len), at));
    }
  }
  await io('write', () => fh.truncate(target * bs));

  for (let i = j - 1; i >= 0; i--) {
    const src = plan.sources[i]!; // a delta: checkPlan allows a full copy only as the oldest
    const opts = src.storedChecksum !== null ? { blockSize: bs, verifyStoredChecksum: src.storedChecksum } : { blockSize: bs };
    const reader = new PageDeltaReader(store, src.key, src.alg, opts);
    const stop = Math.min(limits[i]!, target);
    for await (const run of reader.runs()) {
      const end = Math.min(run.start + run.count, stop);
      if (end <= run.start) continue; // past the limit: read on, to verify the whole file
      await io('write', () => writeFully(fh, run.pages.subarray(0, (end - run.start) * bs), run.start * bs));
    }
    if (reader.fileBlocks !== src.blocks) {
      throw corrupt(src.key, `has block count ${reader.fileBlocks}, its manifest entry says ${src.blocks}`);
    }
  }
  return target * bs;
}

/** Bytes per read when a rebuilt file is read back. */
const READ_BACK_BYTES = 1024 * 1024;

/** The file behind `fh` from its start, in chunks valid until the next one is asked for. */
export async function* readBack(fh: FileHandle, path: string): AsyncGenerator<Buffer> {
  const buffer = Buffer.allocUnsafe(READ_BACK_BYTES);
  for (let position = 0; ; ) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buffer, 0, buffer.length, position));
    } catch (e) {
      throw fromIoError(e, 'read', path);
    }
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/**
 * The plan's content for a consumer that takes a stream (merge): rebuilt in place into the new
 * scratch file `scratch`, then read back from it; the scratch file is removed at the end, or when
 * the consumer stops early or something fails. The caller checks the content (fileContent does).
 */
export async function* rebuiltThroughScratch(store: ByteStore, plan: ReconstructPlan, scratch: string): AsyncGenerator<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(scratch, 'wx+', 0o600);
  } catch (e) {
    throw fromIoError(e, 'create', scratch);
  }
  try {
    await rebuildInPlace(store, plan, fh, scratch);
    yield* readBack(fh, scratch);
  } finally {
    await fh.close().catch(() => undefined);
    await unlink(scratch).catch(() => undefined);
  }
}
