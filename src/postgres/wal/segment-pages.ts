/**
 * Pages of one WAL segment out of a stream of chunks of any size: each page is copied into the
 * caller's reusable page buffer, so memory stays one page plus the chunk being consumed.
 */
export class SegmentPages {
  private readonly chunks: AsyncIterator<Uint8Array>;
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkPos = 0;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.chunks = source[Symbol.asyncIterator]();
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
