/**
 * Rebuild one relation file from a chain of backups: the newest backup that holds a block
 * supplies it, each backup's block count cuts off what lies past it (truncation) unless a newer
 * backup supplies those blocks again, and blocks found nowhere are zeros. Restore, merge and
 * export all write files through this one function. See docs/restore-planning.md.
 *
 * Design note. The file is produced in block order, one chunk of up to 1 MiB at a time, so memory
 * stays flat whatever the file size: the base (a whole stored file) is streamed and cut into
 * page-aligned chunks, and every delta is read through a cursor that is only ever asked for the
 * blocks of the current chunk. Deltas are applied oldest to newest, so the newest copy of a block
 * is the one left in the chunk; that costs a few redundant page copies where deltas overlap but
 * needs no per-block bookkeeping. Every source is read to its end, even past what the target
 * needs, because its stored checksum can only be verified there.
 */
import type { CompressAlg } from '../../core/backup-types.js';
import { PgkeepError } from '../../errors.js';
import { PageDeltaReader, type PageRun } from '../../repository/page-delta.js';
import { readStoredFile } from '../../repository/stored-file.js';
import { readStoredParts, type PartedSource } from '../../repository/stored-parts.js';
import type { ByteStore } from '../../storage/byte-store.js';

export type ChainSource =
  /** The whole file stored (storage: full): the base of the chain; `parted` when stored in parts. */
  | { kind: 'full'; key: string; alg: CompressAlg; storedChecksum: string | null; blocks: number; parted?: PartedSource | undefined }
  /** A page-delta file (storage: delta). */
  | { kind: 'delta'; key: string; alg: CompressAlg; storedChecksum: string | null; blocks: number };

export interface ReconstructPlan {
  blockSize: number;
  /** Blocks of the rebuilt file (normally the newest backup's block count). */
  targetBlocks: number;
  /**
   * Newest first. Only the last may be 'full' (the base); with no 'full' source the file was
   * created after the base backup and is rebuilt from deltas over zeros.
   */
  sources: ChainSource[];
}

/** Bytes per yielded chunk at most (rounded down to whole pages). */
const CHUNK_BYTES = 1024 * 1024;
const VALIDATE_HINT = 'run `pgkeep validate` to find every damaged backup';

/**
 * The rebuilt file's content, in block order: page-aligned chunks of up to 1 MiB whose
 * concatenation is exactly `targetBlocks × blockSize` bytes.
 *
 * A yielded chunk is valid only until the generator is resumed (its buffer is reused): write it
 * before asking for the next one. Sources are verified as they end, which may be after the last
 * chunk was yielded: an error thrown at any point means the rebuilt file must be discarded
 * (BACKUP_CORRUPT naming the stored file).
 */
export async function* reconstructDataFile(store: ByteStore, plan: ReconstructPlan): AsyncGenerator<Buffer> {
  checkPlan(plan);
  const bs = plan.blockSize;
  const target = plan.targetBlocks;
  const chunkPages = Math.max(1, Math.floor(CHUNK_BYTES / bs));
  const n = plan.sources.length;

  const limits = deltaLimits(plan);
  const last = plan.sources[n - 1];
  const base = last?.kind === 'full' ? new BaseCursor(store, last, bs) : undefined;
  const baseLimit = base ? (limits[n - 1] as number) : 0;
  const deltas: DeltaCursor[] = [];
  for (let i = base ? n - 2 : n - 1; i >= 0; i--) {
    deltas.push(new DeltaCursor(store, plan.sources[i] as ChainSource, bs, limits[i] as number));
  }

  const own = Buffer.allocUnsafe(Math.min(chunkPages, target) * bs);
  try {
    for (let b0 = 0; b0 < target; ) {
      const b1 = Math.min(b0 + chunkPages, target);
      const len = (b1 - b0) * bs;
      const fromBase = base ? Math.max(0, Math.min(b1, baseLimit) - b0) : 0;
      let chunk: Buffer;
      if (base && fromBase === b1 - b0) {
        // Usually a view of the base's chunk (zero copy), which the deltas are then applied to: the
        // base's reader reads into that buffer again only when the next chunk is asked for.
        chunk = await base.take(len, own);
      } else {
        chunk = own.subarray(0, len);
        if (base && fromBase > 0) await base.copyInto(chunk.subarray(0, fromBase * bs));
        chunk.fill(0, fromBase * bs);
      }
      for (const d of deltas) await d.apply(chunk, b0, b1);
      yield chunk;
      b0 = b1;
    }
    // Whatever the target did not need is still read: the checksums cover whole files.
    if (base) await base.finish();
    for (const d of deltas) await d.finish();
  } finally {
    // Closes every file when the consumer stops early or something failed; no-ops otherwise.
    await Promise.allSettled([base?.close(), ...deltas.map((d) => d.close())]);
  }
}

/** Rebuild the file into `sink`, one chunk at a time; returns the bytes written. */
export async function writeReconstructed(store: ByteStore, plan: ReconstructPlan, sink: (chunk: Buffer) => Promise<void>): Promise<number> {
  let bytes = 0;
  for await (const chunk of reconstructDataFile(store, plan)) {
    await sink(chunk);
    bytes += chunk.length;
  }
  return bytes;
}

/** limits[i]: source i may supply only blocks below every block count from the newest down to it. */
export function deltaLimits(plan: ReconstructPlan): number[] {
  const limits: number[] = [];
  let limit = Number.POSITIVE_INFINITY;
  for (const s of plan.sources) {
    limit = Math.min(limit, s.blocks);
    limits.push(limit);
  }
  return limits;
}

export function checkPlan(plan: ReconstructPlan): void {
  const bad = (what: string): PgkeepError => new PgkeepError('INTERNAL', `invalid reconstruction plan: ${what}`);
  if (!Number.isInteger(plan.blockSize) || plan.blockSize <= 0) throw bad(`block size ${plan.blockSize}`);
  if (!Number.isInteger(plan.targetBlocks) || plan.targetBlocks < 0) throw bad(`target of ${plan.targetBlocks} blocks`);
  plan.sources.forEach((s, i) => {
    if (!Number.isInteger(s.blocks) || s.blocks < 0) throw bad(`${s.key} has ${s.blocks} blocks`);
    if (s.kind === 'full' && i !== plan.sources.length - 1) throw bad(`the full copy ${s.key} is not the oldest source`);
  });
}

export function corrupt(key: string, what: string): PgkeepError {
  return new PgkeepError('BACKUP_CORRUPT', `stored file ${key} ${what}`, VALIDATE_HINT);
}

/** The base's content, taken in page-aligned pieces, then read to its end to verify it. */
class BaseCursor {
  private readonly it: AsyncGenerator<Buffer>;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Bytes of content taken or skipped so far, including the current chunk's consumed part. */
  private consumed = 0;

  constructor(
    store: ByteStore,
    private readonly src: ChainSource,
    private readonly bs: number,
  ) {
    // Lent chunks, as readStoredParts gives: a view taken from one is written before the next pull.
    const opts = src.storedChecksum !== null ? { verifyStoredChecksum: src.storedChecksum, lend: true } : { lend: true };
    this.it = src.kind === 'full' && src.parted ? readStoredParts(store, src.parted) : readStoredFile(store, src.key, src.alg, opts);
  }

  /**
   * The next `n` bytes: a view of the current content chunk when it holds them all, else copied
   * into `into`. Fewer bytes than the manifest's block count promise is BACKUP_CORRUPT.
   */
  async take(n: number, into: Buffer): Promise<Buffer> {
    if (this.pos === this.chunk.length) await this.pull();
    if (this.chunk.length - this.pos >= n) {
      const view = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.consumed += n;
      return view;
    }
    await this.copyInto(into.subarray(0, n));
    return into.subarray(0, n);
  }

  /** Fill `into` with the next bytes, always by copying. */
  async copyInto(into: Buffer): Promise<void> {
    let got = 0;
    while (got < into.length) {
      if (this.pos === this.chunk.length && !(await this.pull())) throw this.short();
      const k = Math.min(into.length - got, this.chunk.length - this.pos);
      this.chunk.copy(into, got, this.pos, this.pos + k);
      got += k;
      this.pos += k;
      this.consumed += k;
    }
  }

  /** Read to the end (verifying the stored checksum) and check the size against `blocks`. */
  async finish(): Promise<void> {
    this.consumed += this.chunk.length - this.pos;
    this.pos = this.chunk.length;
    while (await this.pull()) {
      this.consumed += this.chunk.length;
      this.pos = this.chunk.length;
    }
    if (Math.floor(this.consumed / this.bs) !== this.src.blocks) {
      throw corrupt(this.src.key, `holds ${this.consumed} bytes, not the ${this.src.blocks} blocks of ${this.bs} bytes its manifest entry says`);
    }
  }

  async close(): Promise<void> {
    await this.it.return(undefined);
  }

  private async pull(): Promise<boolean> {
    const r = await this.it.next();
    if (r.done) return false;
    this.chunk = r.value;
    this.pos = 0;
    return true;
  }

  private short(): PgkeepError {
    return corrupt(this.src.key, `ends after ${this.consumed} bytes, short of the ${this.src.blocks} blocks of ${this.bs} bytes its manifest entry says`);
  }
}

/** One delta's runs, consumed chunk by chunk; the part of a run past a chunk waits for the next. */
class DeltaCursor {
  private readonly reader: PageDeltaReader;
  private readonly it: AsyncGenerator<PageRun>;
  private run: PageRun | undefined;
  /** Pages of `run` already consumed. */
  private pos = 0;

  constructor(
    store: ByteStore,
    private readonly src: ChainSource,
    private readonly bs: number,
    /** Blocks at or past this are cut off by this backup or a newer one. */
    private readonly limit: number,
  ) {
    const opts = src.storedChecksum !== null ? { blockSize: bs, verifyStoredChecksum: src.storedChecksum } : { blockSize: bs };
    this.reader = new PageDeltaReader(store, src.key, src.alg, opts);
    this.it = this.reader.runs();
  }

  /**
   * Copy this delta's pages for blocks [b0, b1) below its limit into `chunk` (which holds block
   * b0 at offset 0), consuming its runs up to b1. Chunks must come in ascending, adjacent order.
   */
  async apply(chunk: Buffer, b0: number, b1: number): Promise<void> {
    const bs = this.bs;
    const stop = Math.min(b1, this.limit);
    for (;;) {
      let run = this.run;
      if (run === undefined || this.pos === run.count) {
        run = await this.next();
        if (run === undefined) return;
      }
      const from = run.start + this.pos;
      if (from >= b1) return;
      const end = Math.min(run.start + run.count, b1);
      const copyEnd = Math.min(end, stop);
      if (copyEnd > from) run.pages.copy(chunk, (from - b0) * bs, this.pos * bs, (copyEnd - run.start) * bs);
      this.pos = end - run.start;
    }
  }

  /** Read the remaining runs (verifying the stored checksum) and check the trailer's block count. */
  async finish(): Promise<void> {
    while ((await this.next()) !== undefined) {
      // Past the target: nothing to copy, but the whole file must be read to verify it.
    }
    if (this.reader.fileBlocks !== this.src.blocks) {
      throw corrupt(this.src.key, `has block count ${this.reader.fileBlocks}, its manifest entry says ${this.src.blocks}`);
    }
  }

  async close(): Promise<void> {
    await this.it.return(undefined);
  }

  private async next(): Promise<PageRun | undefined> {
    const r = await this.it.next();
    this.run = r.done ? undefined : r.value;
    this.pos = 0;
    return this.run;
  }
}
