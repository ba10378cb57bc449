/**
 * Pages of one WAL segment out of a stream of chunks of any size: each page is copied into the
 * caller's reusable page buffer, so memory stays one page plus the chunk being consumed.
 */

/** A segment's content that can also go on from a later offset without reading what lies before (a plain file). */
export interface SeekableSegment extends AsyncIterable<Uint8Array> {
  /** The chunks that follow start at `offset`. */
  seekTo(offset: number): void;
}

export class SegmentPages {
  private readonly chunks: AsyncIterator<Uint8Array>;
  private readonly seekable: SeekableSegment | undefined;
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkPos = 0;
  /** Offset in the segment of the next byte a page gets. */
  private offset = 0;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array> | SeekableSegment) {
    this.seekable = 'seekTo' in source ? source : undefined;
    this.chunks = source[Symbol.asyncIterator]();
  }

  /**
   * Moves on to `offset` (not back): a seekable source starts again there, any other is read and
   * the bytes before it dropped. Returns the offset reached: less than `offset` where the content ends first.
   */
  async skipTo(offset: number, scratch: Uint8Array): Promise<number> {
    if (offset <= this.offset || this.done) return this.offset;
    if (this.seekable) {
      this.seekable.seekTo(offset);
      this.chunk = new Uint8Array(0);
      this.chunkPos = 0;
      this.offset = offset;
      return offset;
    }
    while (this.offset < offset) {
      const got = await this.readPage(scratch.subarray(0, Math.min(scratch.length, offset - this.offset)));
      if (got === 0) break;
    }
    return this.offset;
  }

  /** Fills `page`; returns the bytes filled, fewer than page.length only where the segment's content ends. */
  async readPage(page: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < page.length) {
      if (this.chunkPos >= this.chunk.length) {
        if (this.done) break;
        const next = await this.chunks.next();
        if (next.done === true) {
          this.done = true;
          break;
        }
        this.chunk = next.value;
        this.chunkPos = 0;
        continue;
      }
      const n = Math.min(page.length - filled, this.chunk.length - this.chunkPos);
      page.set(this.chunk.subarray(this.chunkPos, this.chunkPos + n), filled);
      this.chunkPos += n;
      filled += n;
    }
    this.offset += filled;
    return filled;
  }

  /** Releases the source (closes its file) when reading stops before its end. */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.chunks.return?.();
    }
  }
}
