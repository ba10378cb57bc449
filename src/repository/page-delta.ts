/**
 * Page-delta files: the changed pages of one relation segment file, plus the file's block count
 * at backup time (so that a restore can truncate). This is the content of a manifest entry with
 * `storage: delta`; it is stored through StoredFileWriter, so compression and both checksums
 * come from the stored-file layer, and this file only defines the content layout:
 *
 * ```
 * header   "PGKD" | u16 version = 1 | u16 reserved = 0 | u32 blockSize             12 bytes
 * run      u32 start | u32 count | count × blockSize bytes of pages                 repeated
 * trailer  u32 0xFFFFFFFF | u32 fileBlocks | u32 pageCount                           12 bytes
 * ```
 *
 * Little-endian. Runs are strictly ascending and never overlap (a run may start where the
 * previous one ended); each holds 1 to MAX_RUN_PAGES pages, so a reader needs at most one run
 * (1 MiB at 8 KiB pages) in memory. Block numbers are relative to the segment file. The trailer
 * comes last because the writer streams pages as it finds them and only knows the totals at the
 * end; the reader therefore learns `fileBlocks` only once every run has been read.
 */
import type { CompressAlg } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import type { ByteStore } from '../storage/byte-store.js';
import { readStoredFile, StoredFileWriter, type StoredFileResult } from './stored-file.js';

export const PAGE_DELTA_MAGIC = Buffer.from('PGKD', 'latin1');
export const PAGE_DELTA_VERSION = 1;
export const PAGE_DELTA_HEADER_SIZE = 12;
const RUN_HEADER_SIZE = 8;
/** Pages per run at most: bounds what a reader holds for one run. */
export const MAX_RUN_PAGES = 128;
/** A run's `start` with this value marks the trailer instead. */
const TRAILER_MARK = 0xffff_ffff;
const TRAILER_SIZE = 12;
/** The staging buffer: room for one whole run, header and pages. */
function stagingBytes(blockSize: number): number {
  return RUN_HEADER_SIZE + MAX_RUN_PAGES * blockSize;
}
/** Block numbers and counts are u32, and TRAILER_MARK is not a block. */
const MAX_BLOCKS = TRAILER_MARK;
const VALIDATE_HINT = 'run `pgkeep validate` to find every damaged backup';

/** PostgreSQL's BLCKSZ is a power of two from 1 to 32 KiB. */
function checkBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1024 || blockSize > 32768 || (blockSize & (blockSize - 1)) !== 0) {
    throw new PgkeepError('INTERNAL', `invalid block size ${blockSize} for a page-delta file`);
  }
}

export class PageDeltaWriter {
  /**
   * Runs gathered before they go to the stored file, each as its header and pages: one write for
   * many runs instead of two for each (a scattered change is a run per page, and each write is a
   * chain of awaits). Its last run stays open while pages extend it; its count is written when it
   * closes. Room for one whole run; allocated on first use: most files of a DELTA backup change nowhere.
   */
  private staging: Buffer | undefined;
  private fill = 0;
  /** The open run: where its header is in `staging`, its first block and its pages so far (0: none open). */
  private runAt = 0;
  private runStart = 0;
  private runCount = 0;
  /** First block number a new page may have (the end of the last page added). */
  private nextBlock = 0;
  private pages = 0;
  private readonly head = Buffer.alloc(Math.max(RUN_HEADER_SIZE, TRAILER_SIZE));
  private done = false;

  private constructor(
    private readonly out: StoredFileWriter,
    readonly key: string,
    readonly blockSize: number,
  ) {}

  static async open(store: ByteStore, key: string, alg: CompressAlg, level: number, blockSize: number): Promise<PageDeltaWriter> {
    checkBlockSize(blockSize);
    const out = await StoredFileWriter.open(store, key, alg, level);
    const writer = new PageDeltaWriter(out, key, blockSize);
    try {
      const h = Buffer.alloc(PAGE_DELTA_HEADER_SIZE);
      PAGE_DELTA_MAGIC.copy(h, 0);
      h.writeUInt16LE(PAGE_DELTA_VERSION, 4);
      h.writeUInt16LE(0, 6);
      h.writeUInt32LE(blockSize, 8);
      await out.write(h);
    } catch (e) {
      await out.abort();
      throw e;
    }
    return writer;
  }

  /** Pages added so far. */
  get pageCount(): number {
    return this.pages;
  }

  /**
   * Add whole pages for the contiguous blocks start .. start + n - 1. Blocks must ascend across
   * calls (INTERNAL otherwise). A call contiguous with the previous one extends its run; runs are
   * cut at MAX_RUN_PAGES. `pages` may be reused by the caller once the promise resolves.
   */
  async addPages(start: number, pages: Uint8Array): Promise<void> {
    const n = this.checkPages(start, pages);
    if (n === 0) return;
    let block = start;
    let off = 0;
    while (off < pages.length) {
      this.closeRunUnlessItGoesOnAt(block);
      const left = (pages.length - off) / this.blockSize;
      if (this.runCount === 0 && left >= MAX_RUN_PAGES) {
        // A whole run from the caller's buffer: written at once, no copy (after what is
        // gathered). StoredFileWriter copies what it keeps, so the caller may still reuse `pages`.
        await this.flushClosedRuns();
        this.head.writeUInt32LE(block, 0);
        this.head.writeUInt32LE(MAX_RUN_PAGES, 4);
        await this.out.write(this.head.subarray(0, RUN_HEADER_SIZE));
        await this.out.write(pages.subarray(off, off + MAX_RUN_PAGES * this.blockSize));
        block += MAX_RUN_PAGES;
        off += MAX_RUN_PAGES * this.blockSize;
        continue;
      }
      this.staging ??= Buffer.allocUnsafe(stagingBytes(this.blockSize));
      if (!this.hasRoom(this.runCount === 0 ? 1 : 0, 1)) {
        // Full: the closed runs go out, and the open one moves to the front (it fits: room for a whole run).
        await this.flushClosedRuns();
        continue;
      }
      const taken = this.stage(block, pages, off);
      block += taken;
      off += taken * this.blockSize;
    }
    this.nextBlock = block;
    this.pages += n;
  }

  /**
   * addPages without a wait, when it needs none: true when the pages were gathered; false, with
   * nothing done, when they need the stored file first (the writer's first pages, a full buffer,
   * a whole run). A scattered change is thousands of single pages, and each await of addPages
   * is a turn of the microtask queue through several async frames: this path has none
   * (docs/performance.md, "Changed pages gathered without a wait").
   */
  addPagesNow(start: number, pages: Uint8Array): boolean {
    const n = this.checkPages(start, pages);
    // A run is cut once at most (n < MAX_RUN_PAGES), so two headers at most.
    if (this.staging === undefined || n >= MAX_RUN_PAGES || !this.hasRoom(2, n)) return false;
    let block = start;
    let off = 0;
    while (off < pages.length) {
      this.closeRunUnlessItGoesOnAt(block);
      const taken = this.stage(block, pages, off);
      block += taken;
      off += taken * this.blockSize;
    }
    this.nextBlock = block;
    this.pages += n;
    return true;
  }

  /** Checks a call's pages (INTERNAL when they are not whole, out of range or not ascending): their count. */
  private checkPages(start: number, pages: Uint8Array): number {
    this.assertOpen('add pages to');
    const bs = this.blockSize;
    if (pages.length % bs !== 0) {
      throw new PgkeepError('INTERNAL', `page-delta ${this.key}: ${pages.length} bytes is not a whole number of ${bs}-byte pages`);
    }
    const n = pages.length / bs;
    if (!Number.isInteger(start) || start < 0 || start + n > MAX_BLOCKS) {
      throw new PgkeepError('INTERNAL', `page-delta ${this.key}: blocks ${start} + ${n} are out of range`);
    }
    if (start < this.nextBlock) {
      throw new PgkeepError('INTERNAL', `page-delta ${this.key}: block ${start} added after block ${this.nextBlock - 1}; blocks must ascend`);
    }
    return n;
  }

  /** Whether `staging` (allocated) holds `headers` more run headers and `pages` more pages. */
  private hasRoom(headers: number, pages: number): boolean {
    return this.fill + headers * RUN_HEADER_SIZE + pages * this.blockSize <= (this.staging as Buffer).length;
  }

  /**
   * Gathers pages from `off` into `staging`, extending the open run or opening one at `block`, as
   * many as fit in the run and the buffer (at least one: the caller made room): how many.
   */
  private stage(block: number, pages: Uint8Array, off: number): number {
    const bs = this.blockSize;
    const staging = this.staging as Buffer;
    if (this.runCount === 0) {
      this.runAt = this.fill;
      this.runStart = block;
      staging.writeUInt32LE(block, this.fill);
      this.fill += RUN_HEADER_SIZE;
    }
    const take = Math.min((pages.length - off) / bs, MAX_RUN_PAGES - this.runCount, Math.floor((staging.length - this.fill) / bs));
    staging.set(pages.subarray(off, off + take * bs), this.fill);
    this.fill += take * bs;
    this.runCount += take;
    return take;
  }

  /**
   * Write the last run and the trailer, commit durably. `fileBlocks` is the file's block count at
   * backup time; no page may lie at or past it. Aborts on failure.
   */
  async finish(fileBlocks: number): Promise<StoredFileResult & { pageCount: number }> {
    this.assertOpen('finish');
    if (!Number.isInteger(fileBlocks) || fileBlocks < 0 || fileBlocks > MAX_BLOCKS || fileBlocks < this.nextBlock) {
      throw new PgkeepError('INTERNAL', `page-delta ${this.key}: block count ${fileBlocks} is invalid or below the pages stored (up to block ${this.nextBlock - 1})`);
    }
    this.done = true;
    let result: StoredFileResult;
    try {
      this.closeRun();
      await this.flushClosedRuns();
      this.head.writeUInt32LE(TRAILER_MARK, 0);
      this.head.writeUInt32LE(fileBlocks, 4);
      this.head.writeUInt32LE(this.pages, 8);
      await this.out.write(this.head.subarray(0, TRAILER_SIZE));
      result = await this.out.finish();
    } catch (e) {
      await this.out.abort();
      throw e;
    }
    return { ...result, pageCount: this.pages };
  }

  /** Drop the temporary. Safe at any point; a no-op once finished. */
  async abort(): Promise<void> {
    this.done = true;
    await this.out.abort();
  }

  /** Closes the open run unless a page at `block` extends it (next to its last, and room in it). */
  private closeRunUnlessItGoesOnAt(block: number): void {
    if (this.runCount > 0 && (this.runStart + this.runCount !== block || this.runCount === MAX_RUN_PAGES)) this.closeRun();
  }

  /** Writes the open run's page count into its header: the run is complete. */
  private closeRun(): void {
    if (this.runCount === 0) return;
    (this.staging as Buffer).writeUInt32LE(this.runCount, this.runAt + 4);
    this.runCount = 0;
  }

  /**
   * Sends the closed runs to the stored file, keeping the open one, if any, moved to the front of
   * `staging`; with none open, everything gathered goes.
   */
  private async flushClosedRuns(): Promise<void> {
    if (this.fill === 0) return; // nothing gathered (and no buffer yet, perhaps)
    const staging = this.staging as Buffer;
    const closedEnd = this.runCount > 0 ? this.runAt : this.fill;
    if (closedEnd > 0) await this.out.write(staging.subarray(0, closedEnd));
    staging.copyWithin(0, closedEnd, this.fill);
    this.fill -= closedEnd;
    this.runAt = 0;
  }

  private assertOpen(action: string): void {
    if (this.done) throw new PgkeepError('INTERNAL', `cannot ${action} page-delta ${this.key}: the writer is closed`);
  }
}

/** Pages of blocks start .. start + count - 1, `count × blockSize` bytes. */
export interface PageRun {
  start: number;
  count: number;
  pages: Buffer;
}

export interface ReadPageDeltaOptions {
  /** The block size the file must have been written with (the backup's). */
  blockSize: number;
  /** xxh64 the stored bytes must have (the manifest's storedChecksum). */
  verifyStoredChecksum?: string;
}

/**
 * Reads one page-delta file. `runs()` yields its runs in block order; once it has completed,
 * `fileBlocks` and `pageCount` hold the trailer. Malformed content is BACKUP_CORRUPT naming the
 * key; like readStoredFile, the stored checksum is only known at the end, so a consumer must
 * treat an error at any point as "this whole file is bad".
 */
export class PageDeltaReader {
  private trailer: { fileBlocks: number; pageCount: number } | undefined;
  private started = false;

  constructor(
    private readonly store: ByteStore,
    readonly key: string,
    private readonly alg: CompressAlg,
    private readonly opts: ReadPageDeltaOptions,
  ) {
    checkBlockSize(opts.blockSize);
  }

  /** The file's block count at backup time; known once `runs()` has completed. */
  get fileBlocks(): number {
    return this.completed().fileBlocks;
  }

  /** Pages the file holds; known once `runs()` has completed. */
  get pageCount(): number {
    return this.completed().pageCount;
  }

  /**
   * The runs, in ascending block order. A run's `pages` may be a view of a buffer that the next
   * iteration overwrites: copy it to keep it. Can be iterated once.
   */
  async *runs(): AsyncGenerator<PageRun> {
    if (this.started) throw new PgkeepError('INTERNAL', `page-delta ${this.key} is read twice`);
    this.started = true;
    const bs = this.opts.blockSize;
    const verify = this.opts.verifyStoredChecksum;
    // Lent chunks: one pooled buffer refilled in place, so that reading a delta allocates nothing
    // per frame. A run's view may then be overwritten by the next iteration, as documented above.
    const content = readStoredFile(this.store, this.key, this.alg, verify !== undefined ? { verifyStoredChecksum: verify, lend: true } : { lend: true });
    const cursor = new ContentCursor(content);
    const small = Buffer.alloc(PAGE_DELTA_HEADER_SIZE);
    // Lazily: a run that lies inside one content chunk is yielded as a view, without a copy.
    let runBuf: Buffer | undefined;
    const runScratch = (): Buffer => (runBuf ??= Buffer.allocUnsafe(MAX_RUN_PAGES * bs));
    try {
      const h = await cursor.take(PAGE_DELTA_HEADER_SIZE, small);
      if (h.length < PAGE_DELTA_HEADER_SIZE || !h.subarray(0, 4).equals(PAGE_DELTA_MAGIC)) throw this.corrupt('has no page-delta header');
      const version = h.readUInt16LE(4);
      if (version > PAGE_DELTA_VERSION) {
        throw new PgkeepError('REPO_FORMAT_UNSUPPORTED', `page-delta ${this.key} has format version ${version}, this pgkeep reads up to ${PAGE_DELTA_VERSION}`, 'upgrade pgkeep');
      }
      if (version < 1 || h.readUInt16LE(6) !== 0) throw this.corrupt(`has an invalid header (version ${version}, reserved ${h.readUInt16LE(6)})`);
      const fileBs = h.readUInt32LE(8);
      if (fileBs !== bs) throw this.corrupt(`has block size ${fileBs}, the backup's is ${bs}`);

      let nextBlock = 0;
      let pages = 0;
      for (;;) {
        const r = await cursor.take(RUN_HEADER_SIZE, small);
        if (r.length === 0) throw this.corrupt('ends without its trailer (truncated)');
        if (r.length < RUN_HEADER_SIZE) throw this.corrupt('ends inside a record (truncated)');
        const start = r.readUInt32LE(0);
        const second = r.readUInt32LE(4);
        if (start === TRAILER_MARK) {
          const t = await cursor.take(4, small);
          if (t.length < 4) throw this.corrupt('ends inside its trailer (truncated)');
          const pageCount = t.readUInt32LE(0);
          if (pageCount !== pages) throw this.corrupt(`has ${pages} pages, its trailer says ${pageCount}`);
          if (second < nextBlock) throw this.corrupt(`holds block ${nextBlock - 1}, past its block count ${second}`);
          if (!(await cursor.atEnd())) throw this.corrupt('has bytes after its trailer');
          this.trailer = { fileBlocks: second, pageCount };
          break;
        }
        const count = second;
        if (count === 0 || count > MAX_RUN_PAGES) throw this.corrupt(`has a run of ${count} pages at block ${start}`);
        if (start < nextBlock || start + count > MAX_BLOCKS) throw this.corrupt(`has a run at block ${start} after block ${nextBlock - 1} (out of order)`);
        const bytes = await cursor.take(count * bs, runScratch);
        if (bytes.length < count * bs) throw this.corrupt(`ends inside the run at block ${start} (truncated)`);
        nextBlock = start + count;
        pages += count;
        yield { start, count, pages: bytes };
      }
    } finally {
      // Closes the file when the consumer stops early or something failed.
      await cursor.close();
    }
  }

  private completed(): { fileBlocks: number; pageCount: number } {
    if (!this.trailer) throw new PgkeepError('INTERNAL', `page-delta ${this.key}: the trailer is known only after every run was read`);
    return this.trailer;
  }

  private corrupt(what: string): PgkeepError {
    return new PgkeepError('BACKUP_CORRUPT', `page-delta file ${this.key} ${what}`, VALIDATE_HINT);
  }
}

/** The runs of a page-delta file; see PageDeltaReader.runs (a reader is needed for the trailer). */
export function readPageDelta(store: ByteStore, key: string, alg: CompressAlg, opts: ReadPageDeltaOptions): AsyncGenerator<PageRun> {
  return new PageDeltaReader(store, key, alg, opts).runs();
}

/** Exact-length reads over the content chunks; views when possible, copies across chunks. */
class ContentCursor {
  private readonly it: AsyncIterator<Buffer>;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  private ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /**
   * The next `n` bytes (fewer only at the end): a view of the current chunk when they lie in it,
   * else copied into `into` (at least `n` bytes). Either is valid only until the next call: the
   * chunks are lent, and the next one is read into the same buffer.
   */
  async take(n: number, into: Buffer | (() => Buffer)): Promise<Buffer> {
    if (this.chunk.length - this.pos >= n) {
      const view = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      return view;
    }
    const out = typeof into === 'function' ? into() : into;
    let got = 0;
    while (got < n) {
      if (this.pos === this.chunk.length) {
        if (!(await this.pull())) break;
        continue;
      }
      const k = Math.min(n - got, this.chunk.length - this.pos);
      this.chunk.copy(out, got, this.pos, this.pos + k);
      got += k;
      this.pos += k;
    }
    return out.subarray(0, got);
  }

  /** True when no byte is left. Reads to the end, which is what makes readStoredFile verify the checksum. */
  async atEnd(): Promise<boolean> {
    while (this.pos === this.chunk.length) {
      if (!(await this.pull())) return true;
    }
    return false;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.chunk = r.value;
    this.pos = 0;
    return true;
  }
}
