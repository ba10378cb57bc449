/**
 * PostgreSQL's data page checksum (pg_checksum_page in src/include/storage/checksum_impl.h).
 *
 * The page is viewed as rows of 32 little-endian uint32 words; column j is folded into its own
 * FNV-1a-like sum seeded with CHECKSUM_BASE_OFFSETS[j] (sum = (sum ^ w) * FNV_PRIME ^ ((sum ^ w)
 * >>> 17)), followed by two rounds with w = 0. The 32 sums are XORed together, the absolute block
 * number is XORed in (so a page copied to the wrong place fails), and the result is reduced to
 * `(c % 65535) + 1`, which never yields 0. pd_checksum (bytes 8-9) counts as zero.
 *
 * This runs on every page of a backup, so it allocates nothing: words are read through views
 * cached per ArrayBuffer (byte-views.ts). Columns are processed four at a time so that the
 * running sums stay in local variables instead of going through an array store per word, and the
 * four dependent multiply chains overlap in the CPU; the order of words within a column is what
 * the algorithm fixes, so the result is the same as PostgreSQL's row-by-row loop.
 *
 * Where this Node.js compiles WebAssembly's SIMD instructions (V8 does on x86-64 and arm64), the
 * sums run four columns to an instruction instead (page-checksum.wat): the page is copied into
 * the module's memory and checked there, about 0.5 microseconds for 8 KiB against 2.2 in
 * JavaScript (docs/performance.md, "The page checksum in WebAssembly"). The JavaScript version
 * stays for hosts without it, and as the reference the tests hold the module to.
 */
import { PgkeepError } from '../errors.js';
import { HOST_IS_LITTLE_ENDIAN, dataViewOf, wordsOf } from './byte-views.js';
import { PAGE_CHECKSUM_WASM } from './page-checksum-wasm.js';

/**
 * The part of the WebAssembly JavaScript API used here: Node.js has it, TypeScript's ES2022
 * library does not declare it.
 */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
  CompileError: new () => Error;
};

interface SimdChecksum {
  /** The module's memory: the page is copied to its start. */
  memory: Uint8Array;
  /** The checksum of the `len`-byte page at offset 0 of `memory`, as block `blkno`. */
  checksum: (len: number, blkno: number) => number;
}

/** Largest block size PostgreSQL builds with; the module's memory holds one such page. */
const MAX_BLOCK_SIZE = 32768;

const N_SUMS = 32;
const FNV_PRIME = 16777619;
/** Bytes in one row of N_SUMS words; a block size must be a multiple of it. */
const ROW_BYTES = N_SUMS * 4;
/** Word 2 of the page holds pd_checksum (low half, little-endian) and pd_flags (high half). */
const CHECKSUM_WORD = 2;
const CHECKSUM_WORD_MASK = 0xffff0000;

/** checksumBaseOffsets from checksum_impl.h: fixed, part of the on-disk format. */
const CHECKSUM_BASE_OFFSETS = new Int32Array([
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
]);

const simd = loadSimdChecksum();

/** True when pageChecksum runs in WebAssembly here (so a test can say which one it checked). */
export const PAGE_CHECKSUM_IN_WASM: boolean = simd !== undefined;

/**
 * The checksum PostgreSQL stores in pd_checksum for the page of `blockSize` bytes at
 * `buf[offset]`, which is block `absBlockNo` of its relation fork (segment number * 131072 +
 * block in segment, not the block within the segment file).
 *
 * Only meaningful for pages that are not new (pd_upper != 0): PostgreSQL never checksums those.
 */
export function pageChecksum(buf: Uint8Array, offset: number, blockSize: number, absBlockNo: number): number {
  assertPageInside(buf, offset, blockSize);
  if (simd !== undefined && blockSize <= MAX_BLOCK_SIZE) {
    simd.memory.set(buf.subarray(offset, offset + blockSize));
    return simd.checksum(blockSize, absBlockNo);
  }
  return checksumInJs(buf, offset, blockSize, absBlockNo);
}

/**
 * The same checksum in JavaScript alone: what pageChecksum uses where WebAssembly has no SIMD,
 * and what the tests compare the WebAssembly module with.
 */
export function pageChecksumInJs(buf: Uint8Array, offset: number, blockSize: number, absBlockNo: number): number {
  assertPageInside(buf, offset, blockSize);
  return checksumInJs(buf, offset, blockSize, absBlockNo);
}

/** pageChecksumInJs once the page is known to lie inside `buf`. */
function checksumInJs(buf: Uint8Array, offset: number, blockSize: number, absBlockNo: number): number {
  const rows = blockSize / ROW_BYTES;
  const pos = buf.byteOffset + offset;
  const sum =
    HOST_IS_LITTLE_ENDIAN && (pos & 3) === 0
      ? checksumAlignedWords(wordsOf(buf), pos >>> 2, rows)
      : checksumDataView(dataViewOf(buf), pos, rows);
  return (((sum ^ absBlockNo) >>> 0) % 65535) + 1;
}

function assertPageInside(buf: Uint8Array, offset: number, blockSize: number): void {
  if (blockSize <= 0 || blockSize % ROW_BYTES !== 0) {
    throw new PgkeepError('INTERNAL', `block size ${blockSize} is not a positive multiple of ${ROW_BYTES}`);
  }
  if (offset < 0 || offset + blockSize > buf.length) {
    throw new PgkeepError('INTERNAL', `page at offset ${offset} of ${blockSize} bytes runs past a buffer of ${buf.length} bytes`);
  }
}

/**
 * The WebAssembly checksum, compiled once per thread (synchronously: the module is about 1 KB), or
 * undefined where this Node.js cannot compile SIMD instructions.
 */
function loadSimdChecksum(): SimdChecksum | undefined {
  let instance: { exports: Record<string, unknown> };
  try {
    instance = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(PAGE_CHECKSUM_WASM, 'base64')));
  } catch (e) {
    if (e instanceof WebAssembly.CompileError) return undefined;
    throw e;
  }
  const { memory, checksum } = instance.exports as { memory: { buffer: ArrayBuffer }; checksum: SimdChecksum['checksum'] };
  return { memory: new Uint8Array(memory.buffer), checksum };
}

/**
 * The folded 32-bit block checksum (pg_checksum_block) from host-endian words at `first`.
 *
 * Four columns at a time: each column's sum is a chain of dependent multiplies, so running four
 * independent chains side by side lets the CPU overlap them (about 3x faster than one column at
 * a time).
 */
function checksumAlignedWords(words: Uint32Array, first: number, rows: number): number {
  let result = 0;
  for (let j = 0; j < N_SUMS; j += 4) {
    let s0 = CHECKSUM_BASE_OFFSETS[j] as number;
    let s1 = CHECKSUM_BASE_OFFSETS[j + 1] as number;
    let s2 = CHECKSUM_BASE_OFFSETS[j + 2] as number;
    let s3 = CHECKSUM_BASE_OFFSETS[j + 3] as number;
    for (let i = 0, w = first + j; i < rows; i++, w += N_SUMS) {
      // pd_checksum counts as zero: CHECKSUM_WORD (2) is the third column of the first group.
      const mask2 = i === 0 && j === 0 ? CHECKSUM_WORD_MASK : 0xffffffff;
      const t0 = s0 ^ (words[w] as number);
      const t1 = s1 ^ (words[w + 1] as number);
      const t2 = s2 ^ ((words[w + 2] as number) & mask2);
      const t3 = s3 ^ (words[w + 3] as number);
      s0 = Math.imul(t0, FNV_PRIME) ^ (t0 >>> 17);
      s1 = Math.imul(t1, FNV_PRIME) ^ (t1 >>> 17);
      s2 = Math.imul(t2, FNV_PRIME) ^ (t2 >>> 17);
      s3 = Math.imul(t3, FNV_PRIME) ^ (t3 >>> 17);
    }
    // Two rounds of zeros mix the last word into the low bits.
    for (let r = 0; r < 2; r++) {
      s0 = Math.imul(s0, FNV_PRIME) ^ (s0 >>> 17);
      s1 = Math.imul(s1, FNV_PRIME) ^ (s1 >>> 17);
      s2 = Math.imul(s2, FNV_PRIME) ^ (s2 >>> 17);
      s3 = Math.imul(s3, FNV_PRIME) ^ (s3 >>> 17);
    }
    result ^= s0 ^ s1 ^ s2 ^ s3;
  }
  return result;
}

/** Same as checksumAlignedWords for an unaligned page or a big-endian host. */
function checksumDataView(view: DataView, pos: number, rows: number): number {
  let result = 0;
  const rowStride = ROW_BYTES;
  for (let j = 0; j < N_SUMS; j++) {
    let s = CHECKSUM_BASE_OFFSETS[j] ?? 0;
    let i = 0;
    if (j === CHECKSUM_WORD) {
      const tmp = s ^ (view.getUint32(pos + CHECKSUM_WORD * 4, true) & CHECKSUM_WORD_MASK);
      s = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
      i = 1;
    }
    for (let p = pos + i * rowStride + j * 4; i < rows; i++, p += rowStride) {
      const tmp = s ^ view.getUint32(p, true);
      s = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    }
    let tmp = s;
    s = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    tmp = s;
    s = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    result ^= s;
  }
  return result;
}
