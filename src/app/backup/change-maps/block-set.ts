/**
 * The blocks of one relation segment file that a WAL range names, kept compact whatever the
 * volume of WAL: a Set while few (a hot page named a million times is still one entry), a bitmap
 * of RELSEG_BLOCKS bits (16 KiB) once many, and nothing at all once more than half the file is
 * named, because reading such a file whole (filtered by page LSN) costs about as much as reading
 * the listed pages, and the map then holds one flag instead of tens of thousands of numbers.
 */
import { RELSEG_BLOCKS } from '../../../postgres/relation-file.js';

/** Past this many distinct blocks a Set costs more than the 16 KiB bitmap. */
const SET_LIMIT = 1024;
/** Past this many the file is read whole. */
export const WHOLE_FILE_BLOCKS = RELSEG_BLOCKS / 2;

export class BlockSet {
  private small: Set<number> | undefined = new Set();
  private bits: Uint8Array | undefined;
  private count = 0;
  private whole = false;

  /** `block` is relative to the segment file: 0 <= block < RELSEG_BLOCKS. */
  add(block: number): void {
    if (this.whole) return;
    if (this.small !== undefined) {
      this.small.add(block);
      if (this.small.size > SET_LIMIT) this.toBitmap(this.small);
      return;
    }
    const bits = this.bits!;
    const byte = block >>> 3;
    const mask = 1 << (block & 7);
    if ((bits[byte]! & mask) !== 0) return;
    bits[byte] = bits[byte]! | mask;
    if (++this.count > WHOLE_FILE_BLOCKS) {
      this.whole = true;
      this.bits = undefined;
    }
  }

  /** Distinct blocks named so far (the number at which the file went whole, once it did). */
  get size(): number {
    return this.small?.size ?? this.count;
  }

  /** The blocks, ascending, or 'all' when the file is to be read whole. */
  list(): number[] | 'all' {
    if (this.whole) return 'all';
    if (this.small !== undefined) return [...this.small].sort((a, b) => a - b);
    const out: number[] = [];
    const bits = this.bits!;
    for (let byte = 0; byte < bits.length; byte++) {
      const v = bits[byte]!;
      if (v === 0) continue;
      for (let bit = 0; bit < 8; bit++) if ((v & (1 << bit)) !== 0) out.push(byte * 8 + bit);
    }
    return out;
  }

  private toBitmap(from: Set<number>): void {
    this.bits = new Uint8Array(RELSEG_BLOCKS / 8);
    this.small = undefined;
    this.count = 0;
    for (const b of from) this.add(b);
  }
}
