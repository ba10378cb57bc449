/**
 * Chunk compression for stored files: gzip (node:zlib), lz4 (lz4-napi), zstd (@mongodb-js/zstd).
 *
 * Every call is asynchronous and runs off the main thread (libuv pool or a native thread), so
 * that several chunks of one file, or several files, compress in parallel while the event loop
 * keeps reading. Chunks are independent: each one decompresses on its own. The exception is
 * `chunkDecoderInto`: zstd decoding into the caller's buffer, synchronous, through `zstd-napi`.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { CompressAlg } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';

interface ZstdBinding {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

const requireNative = createRequire(import.meta.url);
let zstdLoaded: ZstdBinding | undefined;
let lz4Loaded: typeof import('lz4-napi') | undefined;

/**
 * The native codecs load on first use: each costs tens of milliseconds of start-up, and a command
 * uses one or none. zstd goes to the package's native binding directly: its index.js wrapper
 * (1.2.2) drops the level argument, so every level used to compress at the binding's default.
 */
function zstd(): ZstdBinding {
  return (zstdLoaded ??= requireNative('@mongodb-js/zstd/bindings.js') as ZstdBinding);
}

function lz4(): typeof import('lz4-napi') {
  return (lz4Loaded ??= requireNative('lz4-napi') as typeof import('lz4-napi'));
}

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Valid levels per algorithm, inclusive. lz4-napi has a single level. */
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

export async function compressChunk(alg: CompressAlg, level: number, raw: Uint8Array): Promise<Buffer> {
  switch (alg) {
    case 'none':
      return Buffer.from(raw);
    case 'gzip':
      return gzipAsync(raw, { level });
    case 'lz4':
      return lz4().compress(asBuffer(raw));
    case 'zstd':
      return zstd().compress(asBuffer(raw), level);
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
        // The bound stops a corrupt (or hostile) chunk from inflating without limit.
        raw = await gunzipAsync(stored, { maxOutputLength: Math.max(rawLength, 1) });
        break;
      case 'lz4':
        // lz4-napi prefixes the block with its raw length (u32 LE) and allocates that much
        // before decoding: check it first, or a damaged prefix could ask for gigabytes.
        if (stored.length < 4 || Buffer.from(stored.buffer, stored.byteOffset, 4).readUInt32LE(0) !== rawLength) {
          throw new Error('length prefix does not match the frame');
        }
        raw = await lz4().uncompress(stored);
        break;
      case 'zstd':
        raw = await zstd().decompress(asBuffer(stored));
        break;
    }
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new PgkeepError('BACKUP_CORRUPT', `${alg} chunk does not decompress (${detail})`, undefined, { cause: e });
  }
  if (raw.length !== rawLength) {
    throw new PgkeepError('BACKUP_CORRUPT', `${alg} chunk decompresses to ${raw.length} bytes, expected ${rawLength}`);
  }
  return raw;
}

/** A decoder that writes one chunk into the caller's buffer: see `chunkDecoderInto`. */
export type ChunkDecoderInto = (stored: Uint8Array, rawLength: number, into: Buffer) => void;

interface ZstdDCtx {
  decompress(dst: Uint8Array, src: Uint8Array): number;
}

/** This thread's decompression context, made on first use. */
let zstdIntoLoaded: ZstdDCtx | undefined;

/**
 * A decoder that decompresses a chunk into a buffer the caller supplies and reuses, where a
 * codec binding can: zstd through `zstd-napi` (ZSTD_decompressDCtx, one context per thread),
 * synchronously on the calling thread. Undefined otherwise, and then only `decompressChunk`
 * (a fresh buffer per chunk) is available: @mongodb-js/zstd 1.2.2 and lz4-napi return a new
 * buffer from native code and take no output buffer, and node:zlib (gzip) has no such call either.
 *
 * zstd-napi is a dependency for this alone (reads: restore, validate): the fresh buffer per
 * 1 MiB chunk is external memory that V8 frees only after tens of megabytes of it
 * (docs/performance.md, "Memory"), and the synchronous call is faster per chunk than a trip
 * through the thread pool.
 *
 * The decoder throws BACKUP_CORRUPT when the chunk does not decompress or gives another length
 * than `rawLength` (it never writes past `into[rawLength]`).
 */
export function chunkDecoderInto(alg: CompressAlg): ChunkDecoderInto | undefined {
  if (alg !== 'zstd') return undefined;
  const dctx = (zstdIntoLoaded ??= new (requireNative('zstd-napi/binding.js') as { DCtx: new () => ZstdDCtx }).DCtx());
  return (stored, rawLength, into) => {
    let n: number;
    try {
      // Bounded by the destination: a chunk that would decompress to more fails here.
      n = dctx.decompress(into.subarray(0, rawLength), stored);
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      throw new PgkeepError('BACKUP_CORRUPT', `zstd chunk does not decompress (${detail})`, undefined, { cause: e });
    }
    if (n !== rawLength) throw new PgkeepError('BACKUP_CORRUPT', `zstd chunk decompresses to ${n} bytes, expected ${rawLength}`);
  };
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
