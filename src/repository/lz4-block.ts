/**
 * The LZ4 block format (lz4's doc/lz4_Block_format.md), encoded and decoded into buffers the
 * caller supplies: what an lz4 stored file holds after each frame's u32 length prefix (the layout
 * lz4-napi's `compress` wrote, which older backups hold).
 *
 * Why not the binding: lz4-napi returns a fresh native buffer per chunk, compressed or
 * decompressed, which V8 frees only when it collects the buffer's small wrapper. A restore reads
 * chunks that compressed 16:1 faster than anything else allocates, so the decompressed megabytes
 * piled up: an lz4 restore or validate of a pgbench scale-50 backup peaked at 570-610 MB, against
 * 106-108 MB for zstd, which works in reused buffers; a FULL lz4 backup grew from 125 MB at scale
 * 10 to 220 MB at scale 200 (docs/performance.md, "Memory"). Both directions are simple enough to
 * do here, into pooled buffers.
 *
 * A block is a list of sequences: a token (high nibble literal length, low nibble match length
 * - 4, 15 meaning "more bytes follow, each added, until one is not 255"), the literals, then a
 * 2-byte little-endian offset back into the output and the match; the last sequence has only
 * literals. The decoder checks every read and write against the bounds, since a typed array
 * silently ignores writes past its end and reads `undefined` past its end: a damaged block must
 * fail, not decode to something else.
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

/**
 * Hash table of the encoder: 2^16 positions, this thread's own, reset for each block. Made on
 * first use: every backup and archive-push loads this module, few of them encode lz4.
 */
const HASH_LOG = 16;
let positionsTable: Int32Array | undefined;
/** The format's end rules: the last 5 bytes are literals, and the last match starts 12 before the end. */
const LAST_LITERALS = 5;
const MATCH_FIND_LIMIT = 12;
const MAX_DISTANCE = 65535;
/** After 2^6 positions without a match, the search steps 2 bytes at a time, then 3...: incompressible data goes fast. */
const SKIP_TRIGGER = 6;

/** The most bytes `encodeLz4Block` writes for `length` input bytes (incompressible input: a token, the length bytes, the literals). */
export function lz4BlockBound(length: number): number {
  return length + Math.floor(length / 255) + 16;
}

/**
 * Encodes `src` as one LZ4 block at `dst[at..)`, which must have room for lz4BlockBound(src.length)
 * bytes, and returns the bytes written. The greedy single-probe search of lz4's fast mode: each
 * position's first 4 bytes are hashed, and a match found there is extended as far as it goes.
 */
export function encodeLz4Block(src: Uint8Array, dst: Uint8Array, at: number): number {
  const length = src.length;
  // DataView reads of 4 bytes compile to one unaligned load: twice as fast as four byte loads.
  const words = new DataView(src.buffer, src.byteOffset, src.byteLength);
  let out = at;
  let anchor = 0;
  if (length > MATCH_FIND_LIMIT) {
    const positions = (positionsTable ??= new Int32Array(1 << HASH_LOG));
    positions.fill(-1);
    const matchEnd = length - LAST_LITERALS;
    const searchEnd = length - MATCH_FIND_LIMIT;
    let ip = 0;
    let misses = 0;
    while (ip < searchEnd) {
      const word = words.getInt32(ip, true);
      const slot = hash32(word);
      const ref = positions[slot] as number;
      positions[slot] = ip;
      if (ref < 0 || ip - ref > MAX_DISTANCE || words.getInt32(ref, true) !== word) {
        ip += 1 + (misses++ >> SKIP_TRIGGER);
        continue;
      }
      misses = 0;
      let end = ip + MIN_MATCH;
      let from = ref + MIN_MATCH;
      while (end + 4 <= matchEnd && words.getInt32(end, true) === words.getInt32(from, true)) {
        end += 4;
        from += 4;
      }
      while (end < matchEnd && src[end] === src[from]) {
        end++;
        from++;
      }
      out = writeSequence(src, anchor, ip, dst, out, ip - ref, end - ip);
      ip = end;
      anchor = end;
      // The position just before the next search, so that a repeat starting there is found.
      if (ip < searchEnd) positions[hash32(words.getInt32(ip - 2, true))] = ip - 2;
    }
  }
  return writeSequence(src, anchor, length, dst, out, 0, 0) - at;
}

/**
 * Writes the literals `src[from..to)` and, when `matchLength` > 0, the match after them; a match
 * length of 0 makes the block's last sequence. Returns the position after it.
 */
function writeSequence(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number, offset: number, matchLength: number): number {
  const literals = to - from;
  const token = at++;
  let nibbles = literals >= 15 ? 0xf0 : literals << 4;
  if (literals >= 15) at = writeLengthExtension(dst, at, literals - 15);
  if (literals <= SHORT_COPY) {
    for (let i = 0; i < literals; i++) dst[at + i] = src[from + i] as number;
  } else {
    dst.set(src.subarray(from, to), at);
  }
  at += literals;
  if (matchLength > 0) {
    dst[at++] = offset & 0xff;
    dst[at++] = offset >>> 8;
    const extra = matchLength - MIN_MATCH;
    nibbles |= extra >= 15 ? 15 : extra;
    if (extra >= 15) at = writeLengthExtension(dst, at, extra - 15);
  }
  dst[token] = nibbles;
  return at;
}

/** Writes `rest` as length bytes (255 while more follow) and returns the position after them. */
function writeLengthExtension(dst: Uint8Array, at: number, rest: number): number {
  while (rest >= 255) {
    dst[at++] = 255;
    rest -= 255;
  }
  dst[at++] = rest;
  return at;
}

/** Knuth's multiplicative hash of 4 bytes, to HASH_LOG bits. */
function hash32(word: number): number {
  return Math.imul(word, -1640531535) >>> (32 - HASH_LOG);
}
