/**
 * LZ4 block decoding into a buffer the caller supplies (the block format of lz4's
 * doc/lz4_Block_format.md; what lz4-napi's `compress` writes after its u32 length prefix).
 *
 * Why not the binding: lz4-napi's `uncompress` returns a fresh native buffer per chunk, which V8
 * frees only when it collects the buffer's small wrapper. A restore reads chunks that compressed
 * 40:1 faster than anything else allocates, so the decompressed megabytes piled up: an lz4 restore
 * or validate of a pgbench scale-50 backup peaked at 570-610 MB, against 106-108 MB for zstd, which
 * decodes into a reused buffer (docs/performance.md, "Memory"). Decoding is simple enough to do
 * here, into the reader's lent buffer, and copyWithin does the long matches at memcpy speed.
 *
 * A block is a list of sequences: a token (high nibble literal length, low nibble match length
 * - 4, 15 meaning "more bytes follow, each added, until one is not 255"), the literals, then a
 * 2-byte little-endian offset back into the output and the match; the last sequence has only
 * literals. Every read and write is checked against the bounds, since a typed array silently
 * ignores writes past its end and reads `undefined` past its end: a damaged block must fail, not
 * decode to something else.
 */

/** Why a block does not decode; the caller turns it into BACKUP_CORRUPT naming the file. */
export class Lz4BlockError extends Error {}

const MIN_MATCH = 4;
/** Literal runs up to this long are copied byte by byte: cheaper than a subarray and a set. */
const SHORT_COPY = 16;
/** Matches up to this long are copied byte by byte: cheaper than copyWithin's call. */
const SHORT_MATCH = 64;

/**
 * Decodes the block `src[start..end)` into `dst[0..)`, and returns the number of bytes written.
 * Throws Lz4BlockError when the block is malformed or would not fit in `dst`.
 */
export function decodeLz4Block(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  if (start < 0 || end > src.length || start > end) throw new Lz4BlockError(`block bounds ${start}..${end} outside a ${src.length}-byte buffer`);
  const cap = dst.length;
  let s = start;
  let d = 0;
  if (s === end) throw new Lz4BlockError('empty block');
  for (;;) {
    const token = src[s++] as number;
    let literals = token >>> 4;
    if (literals === 15) {
      const more = lengthExtension(src, s, end, 'literal');
      literals += more;
      s += extensionBytes(more);
    }
    if (literals > end - s) throw new Lz4BlockError('literals run past the end of the block');
    if (literals > cap - d) throw new Lz4BlockError(`block decodes to more than ${cap} bytes`);
    if (literals <= SHORT_COPY) {
      for (let i = 0; i < literals; i++) dst[d + i] = src[s + i] as number;
    } else {
      dst.set(src.subarray(s, s + literals), d);
    }
    s += literals;
    d += literals;
    if (s === end) return d; // the last sequence: literals only

    if (end - s < 2) throw new Lz4BlockError('block ends inside a match offset');
    const offset = (src[s] as number) | ((src[s + 1] as number) << 8);
    s += 2;
    if (offset === 0 || offset > d) throw new Lz4BlockError(`match offset ${offset} points before the start of the output (at ${d})`);
    let length = token & 15;
    if (length === 15) {
      const more = lengthExtension(src, s, end, 'match');
      length += more;
      s += extensionBytes(more);
    }
    length += MIN_MATCH;
    if (length > cap - d) throw new Lz4BlockError(`block decodes to more than ${cap} bytes`);
    copyMatch(dst, d - offset, d, length);
    d += length;
    // The format ends a block with literals, but a block that ends after a match still decodes
    // to what it says: accept it (the caller checks the length, and the content its checksum).
    if (s === end) return d;
  }
}

/**
 * The sum of the length bytes at `src[at..)` that follow a nibble of 15: each is added, and a
 * byte of 255 means another follows.
 */
function lengthExtension(src: Uint8Array, at: number, end: number, what: 'literal' | 'match'): number {
  let sum = 0;
  let b: number;
  do {
    if (at >= end) throw new Lz4BlockError(`block ends inside a ${what} length`);
    b = src[at++] as number;
    sum += b;
  } while (b === 255);
  return sum;
}

/** How many bytes a length extension summing to `sum` took: every 255, then one byte below it. */
function extensionBytes(sum: number): number {
  return Math.floor(sum / 255) + 1;
}

/**
 * Copies `length` bytes from `from` to `to` (> from) in `dst`, as LZ4 means it when they overlap:
 * byte by byte, so that a short pattern repeats. The bytes from `from` to `to` repeat with that
 * period, so whole runs of them can be copied at once, the run doubling each time.
 */
function copyMatch(dst: Uint8Array, from: number, to: number, length: number): void {
  if (length <= SHORT_MATCH) {
    // Forward, byte by byte: exactly LZ4's meaning, overlapping or not.
    for (let i = 0; i < length; i++) dst[to + i] = dst[from + i] as number;
    return;
  }
  const end = to + length;
  let out = to;
  while (out < end) {
    const n = Math.min(out - from, end - out);
    dst.copyWithin(out, from, from + n);
    out += n;
  }
}
