/**
 * Chunk compression for stored files: gzip (node:zlib), lz4 (lz4-block.ts, in JavaScript), zstd
 * (zstd-napi).
 *
 * All three compress and decompress synchronously on the calling thread, into buffers the caller
 * supplies and reuses (`chunkEncoderInto`, `chunkDecoderInto`): parallelism comes from `-j`, one
 * copier per thread. A fresh buffer per 1 MiB chunk, as the codecs' own calls return, is memory
 * that V8 frees only after tens of megabytes of it (for lz4-napi's, hundreds), and compressing on
 * libuv's threads left their allocator arenas fragmented: either way a backup's or a restore's
 * memory grew with the database (docs/performance.md, "Memory"). gzip still goes through one
 * fresh buffer of node:zlib's per chunk, copied at once. Chunks are independent: each one
 * decompresses on its own.
 */
import { createRequire } from 'node:module';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { CompressAlg } from '../core/backup-types.js';
import { errorMessage, PgkeepError } from '../errors.js';
import { decodeLz4Block, encodeLz4Block, lz4BlockBound } from './lz4-block.js';

interface ZstdCCtx {
  compress(dst: Uint8Array, src: Uint8Array, level: number): number;
}

interface ZstdDCtx {
  decompress(dst: Uint8Array, src: Uint8Array): number;
}

interface ZstdBinding {
  CCtx: new () => ZstdCCtx;
  DCtx: new () => ZstdDCtx;
  compressBound(srcSize: number): number;
}

const requireNative = createRequire(import.meta.url);
let zstdLoaded: ZstdBinding | undefined;
/** This thread's zstd contexts, made on first use: a context is reused chunk after chunk. */
let zstdCCtx: ZstdCCtx | undefined;
let zstdDCtx: ZstdDCtx | undefined;

/** The native codecs load on first use: each costs tens of milliseconds of start-up, and a command uses one or none. */
function zstd(): ZstdBinding {
  return (zstdLoaded ??= requireNative('zstd-napi/binding.js') as ZstdBinding);
}

/**
 * zlib's smallest output chunk. node:zlib gathers its output in chunks of `chunkSize` (16 KiB by
 * default) and joins them: one chunk the size of the result is faster and leaves less behind.
 */
const ZLIB_MIN_CHUNK = 64;

/** Valid levels per algorithm, inclusive. lz4 has a single level (its fast mode). */
const LEVELS: Record<CompressAlg, { min: number; max: number; default: number }> = {
  none: { min: 0, max: 0, default: 0 },
  gzip: { min: 1, max: 9, default: 6 },
  lz4: { min: 1, max: 1, default: 1 },
  // 1, not zstd's own 3: on pgbench data level 1 is as small and a quarter faster (docs/benchmarks.md).
  zstd: { min: 1, max: 22, default: 1 },
};

export function defaultLevel(alg: CompressAlg): number {
  return LEVELS[alg].default;
}

/** Throw INVALID_ARGUMENT unless `level` is an integer the algorithm accepts. */
export function validateLevel(alg: CompressAlg, level: number): void {
  const { min, max } = LEVELS[alg];
  if (Number.isInteger(level) && level >= min && level <= max) return;
  const range = min === max ? `only level ${min}` : `levels ${min} to ${max}`;
  throw new PgkeepError('INVALID_ARGUMENT', `invalid compression level ${level} for ${alg}`, `${alg} accepts ${range}`);
}

/**
 * One chunk compressed into a new buffer of its size (a convenience: stored files compress with
 * `chunkEncoderInto`, into reused buffers).
 */
export function compressChunk(alg: CompressAlg, level: number, raw: Uint8Array): Buffer {
  switch (alg) {
    case 'none':
      return Buffer.from(raw);
    case 'gzip':
    case 'lz4':
    case 'zstd': {
      const into = Buffer.allocUnsafe(encodedBound(alg, raw.length));
      return Buffer.from(into.subarray(0, chunkEncoderInto(alg, level)!(raw, into)));
    }
  }
}

/** An encoder that compresses one chunk into the caller's buffer and returns the bytes written. */
export type ChunkEncoderInto = (raw: Uint8Array, into: Buffer) => number;

/**
 * An encoder into a buffer the caller supplies and reuses (at least `encodedBound` bytes),
 * synchronous: zstd through this thread's ZSTD_compressCCtx, lz4 in JavaScript (lz4-block.ts),
 * gzip through node:zlib and a copy. Undefined for none, which has nothing to encode. A failure
 * is INTERNAL: compressing bytes in memory has no cause outside the program.
 */
export function chunkEncoderInto(alg: CompressAlg, level: number): ChunkEncoderInto | undefined {
  if (alg === 'lz4') return lz4EncodeInto;
  if (alg === 'gzip') {
    validateLevel(alg, level);
    return (raw, into) => gzipEncodeInto(raw, into, level);
  }
  if (alg !== 'zstd') return undefined;
  validateLevel(alg, level);
  const cctx = (zstdCCtx ??= new (zstd().CCtx)());
  return (raw, into) => {
    try {
      return cctx.compress(into, raw, level);
    } catch (e) {
      const detail = errorMessage(e);
      throw new PgkeepError('INTERNAL', `zstd could not compress a chunk of ${raw.length} bytes (${detail})`, undefined, { cause: e });
    }
  };
}

/** The most bytes `chunkEncoderInto(alg)` can write for a chunk of `rawLength` bytes. */
export function encodedBound(alg: CompressAlg, rawLength: number): number {
  switch (alg) {
    case 'gzip':
      return gzipBound(rawLength);
    case 'lz4':
      return LZ4_PREFIX_BYTES + lz4BlockBound(rawLength);
    case 'zstd':
      return zstd().compressBound(rawLength);
    default:
      throw new PgkeepError('INTERNAL', `${alg} has no encoder into a given buffer`);
  }
}

/**
 * Decompress one chunk and check that it gives exactly `rawLength` bytes. A chunk that does not
 * decompress, or gives another length, throws BACKUP_CORRUPT (the caller adds which file).
 */
export async function decompressChunk(alg: CompressAlg, stored: Uint8Array, rawLength: number): Promise<Buffer> {
  let raw: Buffer;
  try {
    switch (alg) {
      case 'none':
        raw = Buffer.from(stored);
        break;
      case 'gzip':
      case 'lz4':
      case 'zstd':
        // Into a buffer of the expected length: a chunk that would give more fails in the decoder.
        raw = Buffer.allocUnsafe(rawLength);
        chunkDecoderInto(alg)!(stored, rawLength, raw);
        break;
    }
  } catch (e) {
    if (e instanceof PgkeepError) throw e; // the decoders' own BACKUP_CORRUPT
    const detail = errorMessage(e);
    throw new PgkeepError('BACKUP_CORRUPT', `${alg} chunk does not decompress (${detail})`, undefined, { cause: e });
  }
  if (raw.length !== rawLength) {
    throw new PgkeepError('BACKUP_CORRUPT', `${alg} chunk decompresses to ${raw.length} bytes, expected ${rawLength}`);
  }
  return raw;
}

/** A decoder that writes one chunk into the caller's buffer: see `chunkDecoderInto`. */
export type ChunkDecoderInto = (stored: Uint8Array, rawLength: number, into: Buffer) => void;

/**
 * A decoder that decompresses a chunk into a buffer the caller supplies and reuses, synchronously:
 * zstd through this thread's ZSTD_decompressDCtx, lz4 in JavaScript (lz4-block.ts), gzip through
 * node:zlib and a copy (zlib takes no output buffer, but one output chunk of the frame's size,
 * tracked by V8 as its own allocation, is faster and lighter than the pool's round trip with
 * 16 KiB pieces). Undefined for none, which has nothing to decode. The synchronous call is
 * faster per chunk than a trip through the pool.
 *
 * The decoder throws BACKUP_CORRUPT when the chunk does not decompress or gives another length
 * than `rawLength` (it never writes past `into[rawLength]`).
 */
export function chunkDecoderInto(alg: CompressAlg): ChunkDecoderInto | undefined {
  if (alg === 'lz4') return lz4DecodeInto;
  if (alg === 'gzip') return gzipDecodeInto;
  if (alg !== 'zstd') return undefined;
  const dctx = (zstdDCtx ??= new (zstd().DCtx)());
  return (stored, rawLength, into) => {
    let n: number;
    try {
      // Bounded by the destination: a chunk that would decompress to more fails here.
      n = dctx.decompress(into.subarray(0, rawLength), stored);
    } catch (e) {
      const detail = errorMessage(e);
      throw new PgkeepError('BACKUP_CORRUPT', `zstd chunk does not decompress (${detail})`, undefined, { cause: e });
    }
    if (n !== rawLength) throw new PgkeepError('BACKUP_CORRUPT', `zstd chunk decompresses to ${n} bytes, expected ${rawLength}`);
  };
}

/** An lz4 chunk: the raw length (u32 LE), then one LZ4 block, as lz4-napi's `compress` wrote it. */
const LZ4_PREFIX_BYTES = 4;

function lz4EncodeInto(raw: Uint8Array, into: Buffer): number {
  into.writeUInt32LE(raw.length, 0);
  return LZ4_PREFIX_BYTES + encodeLz4Block(raw, into, LZ4_PREFIX_BYTES);
}

/**
 * lz4-napi's `compress` writes the raw length (u32 LE), then one LZ4 block. The prefix must be
 * `rawLength`: a chunk's length is known from the stored file's frame table.
 */
function lz4DecodeInto(stored: Uint8Array, rawLength: number, into: Buffer): void {
  let n: number;
  try {
    if (stored.length < LZ4_PREFIX_BYTES) throw new Error('shorter than its length prefix');
    const prefix = (stored[0]! | (stored[1]! << 8) | (stored[2]! << 16) | (stored[3]! << 24)) >>> 0;
    if (prefix !== rawLength) throw new Error(`length prefix ${prefix} does not match the frame's ${rawLength}`);
    n = decodeLz4Block(stored, LZ4_PREFIX_BYTES, stored.length, into.subarray(0, rawLength));
  } catch (e) {
    const detail = errorMessage(e);
    throw new PgkeepError('BACKUP_CORRUPT', `lz4 chunk does not decompress (${detail})`, undefined, { cause: e });
  }
  if (n !== rawLength) throw new PgkeepError('BACKUP_CORRUPT', `lz4 chunk decompresses to ${n} bytes, expected ${rawLength}`);
}

/**
 * More than deflate can write for `rawLength` bytes (zlib's deflateBound: the raw bytes plus 5
 * per 16 KiB stored block and a few more, and the gzip wrapper's 18).
 */
function gzipBound(rawLength: number): number {
  return rawLength + (rawLength >>> 10) + 64;
}

function gzipEncodeInto(raw: Uint8Array, into: Buffer, level: number): number {
  let out: Buffer;
  try {
    // One output chunk the size of the bound: node:zlib otherwise gathers 16 KiB pieces and joins them.
    out = gzipSync(raw, { level, chunkSize: Math.max(gzipBound(raw.length), ZLIB_MIN_CHUNK) });
  } catch (e) {
    const detail = errorMessage(e);
    throw new PgkeepError('INTERNAL', `gzip could not compress a chunk of ${raw.length} bytes (${detail})`, undefined, { cause: e });
  }
  if (out.length > into.length) throw new PgkeepError('INTERNAL', `gzip compressed ${raw.length} bytes into ${out.length}, more than the ${into.length} allowed`);
  into.set(out);
  return out.length;
}

function gzipDecodeInto(stored: Uint8Array, rawLength: number, into: Buffer): void {
  let out: Buffer;
  try {
    // The bound stops a corrupt (or hostile) chunk from inflating without limit.
    out = gunzipSync(stored, { maxOutputLength: Math.max(rawLength, 1), chunkSize: Math.max(rawLength, ZLIB_MIN_CHUNK) });
  } catch (e) {
    const detail = errorMessage(e);
    throw new PgkeepError('BACKUP_CORRUPT', `gzip chunk does not decompress (${detail})`, undefined, { cause: e });
  }
  if (out.length !== rawLength) throw new PgkeepError('BACKUP_CORRUPT', `gzip chunk decompresses to ${out.length} bytes, expected ${rawLength}`);
  into.set(out);
}
