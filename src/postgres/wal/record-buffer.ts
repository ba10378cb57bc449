/**
 * The growable buffer a record spanning pages is assembled in, reused for every record: it
 * grows by doubling to the largest record seen and never shrinks.
 */
export class RecordBuffer {
  private buf = new Uint8Array(64 * 1024);
  length = 0;

  reset(): void {
    this.length = 0;
  }

  append(bytes: Uint8Array): void {
    const needed = this.length + bytes.length;
    if (needed > this.buf.length) {
      let size = this.buf.length;
      while (size < needed) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
    }
    this.buf.set(bytes, this.length);
    this.length = needed;
  }

  /** The assembled bytes: a view, valid until the next reset or append. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
