/**
 * One stored file in a backup: writing it (compressed or not) with its checksums.
 *
 * Design note. 'none' stores the content as is, so a stored file can be copied out by hand and
 * its stored checksum equals its content checksum: it is hashed once, and large writes go
 * straight to the store (small ones are gathered first). Compressed algorithms cut the content into
 * independent 1 MiB frames (stored-file-format.ts), each compressed on the writer's own thread
 * into a pooled buffer and written before the next frame is filled: parallelism comes from `-j`
 * (one copier per thread), and no frame's memory outlives its write, so memory stays bounded
 * whatever the file size. Reading lives in stored-file-reader.ts.
 */
import type { CompressAlg } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import type { ByteStore, ObjectWriter } from '../storage/byte-store.js';
import { chunkEncoderInto, encodedBound, validateLevel, type ChunkEncoderInto } from './codecs.js';
import { createHasher, initHashing, type Hasher } from './hash.js';
import { encodeFrameHeader, encodeStoredHeader, END_MARKER, STORED_CHUNK_SIZE } from './stored-file-format.js';

export { readStoredFile, verifyStoredFile, type ReadStoredFileOptions } from './stored-file-reader.js';

/** With 'none', writes at least this large skip the chunk; smaller ones (page-delta headers, single pages) are gathered. */
const DIRECT_WRITE_BYTES = 64 * 1024;

export interface StoredFileResult {
  /** Content bytes. */
  size: number;
  /** Bytes stored in the repository. */
  storedSize: number;
  /** xxh64 of the content. */
  checksum: string;
  /** xxh64 of the stored bytes. */
  storedChecksum: string;
}

/**
 * Chunk buffers of finished writers, kept for the next file of this thread: a backup writes
 * thousands of small files, and a fresh 1 MiB buffer for each costs more in allocation and
 * garbage collection than the copy itself.
 */
const chunkPool: Buffer[] = [];
const CHUNK_POOL_MAX = 8;

function takeChunk(): Buffer {
  return chunkPool.pop() ?? Buffer.allocUnsafe(STORED_CHUNK_SIZE);
}

function giveChunk(b: Buffer): void {
  if (chunkPool.length < CHUNK_POOL_MAX) chunkPool.push(b);
}

/**
 * Frame buffers for the compressed output (`chunkEncoderInto`), kept for the next frame: one per
 * writer between encoding a frame and the end of its write, so as many as this thread has files open.
 */
const framePool: Buffer[] = [];
const FRAME_POOL_MAX = 8;

function takeFrame(alg: CompressAlg): Buffer {
  const need = encodedBound(alg, STORED_CHUNK_SIZE);
  const pooled = framePool.pop();
  // The codecs' bounds differ by a few bytes: a pooled frame too small is dropped.
  return pooled && pooled.length >= need ? pooled : Buffer.allocUnsafe(need);
}

function giveFrame(b: Buffer): void {
  if (framePool.length < FRAME_POOL_MAX) framePool.push(b);
}

/**
 * A frame's header and payload: the packed bytes, or the raw ones when packing did not shrink
 * them (incompressible data is stored raw, which costs nothing to read back).
 */
function framed(raw: Buffer, packed: Buffer): [Buffer, Buffer] {
  if (packed.length >= raw.length) return [encodeFrameHeader(raw.length, raw.length, true), raw];
  return [encodeFrameHeader(raw.length, packed.length, false), packed];
}

/** 'none': runs of zeros this long, aligned in a direct write, go to the store as zeros (a hole). */
const ZERO_RUN_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(ZERO_RUN_BYTES);

/** Every byte is 0 (the first and last are checked first: most data fails there at once). */
function isAllZeros(bytes: Uint8Array): boolean {
  if (bytes[0] !== 0 || bytes[bytes.length - 1] !== 0) return false;
  return Buffer.compare(bytes, ZEROS.subarray(0, bytes.length)) === 0;
}

export class StoredFileWriter {
  /** Compressed: the frame being filled. 'none': small writes gathered before they go out. */
  private chunk: Buffer | undefined;
  private fill = 0;
  private readonly contentHasher: Hasher = createHasher();
  /** With 'none' the stored bytes are the content: one hash serves both checksums. */
  private readonly storedHasher: Hasher;
  /** Compressed: compresses a frame on this thread into a pooled buffer; undefined for 'none'. */
  private readonly encodeInto: ChunkEncoderInto | undefined;
  private size = 0;
  private state: 'open' | 'finished' | 'failed' | 'aborted' = 'open';

  private constructor(
    private readonly out: ObjectWriter,
    readonly key: string,
    readonly alg: CompressAlg,
    readonly level: number,
  ) {
    this.storedHasher = alg === 'none' ? this.contentHasher : createHasher();
    this.encodeInto = chunkEncoderInto(alg, level);
  }

  /**
   * `prefix` bytes, if given, go first, outside the stored file proper (not in its checksums):
   * a container such as an archived WAL file puts its own header there; readers skip it with
   * readStoredFile's `offset`.
   */
  static async open(store: ByteStore, key: string, alg: CompressAlg, level: number, prefix?: Uint8Array): Promise<StoredFileWriter> {
    validateLevel(alg, level);
    await initHashing();
    const out = await store.openWrite(key);
    const writer = new StoredFileWriter(out, key, alg, level);
    try {
      if (prefix) await out.write(prefix);
      if (alg !== 'none') await writer.writeStored(encodeStoredHeader(alg));
    } catch (e) {
      await out.abort();
      throw e;
    }
    return writer;
  }

  /** Append content. The caller may reuse `raw` once the promise resolves (it is written or copied). */
  async write(raw: Uint8Array): Promise<void> {
    this.assertOpen('write');
    try {
      this.contentHasher.update(raw);
      this.size += raw.length;
      if (this.alg === 'none' && raw.length >= DIRECT_WRITE_BYTES) {
        // Large pieces go straight out, hashed once above (stored bytes = content): no copy.
        // Zeros are left to the store, which may leave a hole: a WAL segment copied after the
        // backup's stop holds a few KiB of records and then zeros up to its 16 MiB.
        await this.flushChunk();
        await this.writeDirect(raw);
        return;
      }
      let off = 0;
      while (off < raw.length) {
        const chunk = (this.chunk ??= takeChunk());
        const n = Math.min(STORED_CHUNK_SIZE - this.fill, raw.length - off);
        chunk.set(raw.subarray(off, off + n), this.fill);
        this.fill += n;
        off += n;
        if (this.fill === STORED_CHUNK_SIZE) await this.flushChunk();
      }
    } catch (e) {
      this.state = 'failed';
      throw e;
    }
  }

  /** 'none', a large piece: its runs of zero slices as zeros, the rest as bytes, in order. */
  private async writeDirect(raw: Uint8Array): Promise<void> {
    let runStart = 0;
    let runZeros = isAllZeros(raw.subarray(0, ZERO_RUN_BYTES));
    for (let off = ZERO_RUN_BYTES; off < raw.length; off += ZERO_RUN_BYTES) {
      const zeros = isAllZeros(raw.subarray(off, off + ZERO_RUN_BYTES));
      if (zeros === runZeros) continue;
      await this.writeRun(raw.subarray(runStart, off), runZeros);
      runStart = off;
      runZeros = zeros;
    }
    await this.writeRun(raw.subarray(runStart), runZeros);
  }

  private async writeRun(bytes: Uint8Array, zeros: boolean): Promise<void> {
    if (zeros) await this.out.writeZeros(bytes.length);
    else await this.out.write(bytes);
  }

  /** Write what is left, commit durably, and return sizes and checksums. Aborts on failure. */
  async finish(): Promise<StoredFileResult> {
    this.assertOpen('finish');
    try {
      await this.flushChunk();
      if (this.alg !== 'none') await this.writeStored(END_MARKER);
      await this.out.commit();
      this.state = 'finished';
      this.releaseChunk();
    } catch (e) {
      this.state = 'failed';
      await this.abort();
      throw e;
    }
    return {
      size: this.size,
      storedSize: this.out.bytesWritten,
      checksum: this.contentHasher.digestHex(),
      storedChecksum: this.storedHasher.digestHex(),
    };
  }

  /** Drop the temporary. Safe at any point, also after a failed write; no-op once finished. */
  async abort(): Promise<void> {
    if (this.state === 'finished' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.releaseChunk();
    await this.out.abort();
  }

  private releaseChunk(): void {
    if (this.chunk) giveChunk(this.chunk);
    this.chunk = undefined;
  }

  /**
   * 'none': writes out the small pieces gathered in the chunk. Compressed: compresses and writes
   * the frame. Either way the chunk is kept for the next write.
   */
  private async flushChunk(): Promise<void> {
    const len = this.fill;
    const buf = this.chunk;
    if (!buf || len === 0) return;
    this.fill = 0;
    if (this.alg === 'none') {
      await this.out.write(buf.subarray(0, len));
      return;
    }
    if (!this.encodeInto) throw new PgkeepError('INTERNAL', `no encoder for ${this.alg}`);
    await this.writeFrameNow(this.encodeInto, buf.subarray(0, len));
  }

  /** Compresses `raw` into a pooled frame buffer and writes it before the buffer goes back. */
  private async writeFrameNow(encode: ChunkEncoderInto, raw: Buffer): Promise<void> {
    const frame = takeFrame(this.alg);
    try {
      for (const part of framed(raw, frame.subarray(0, encode(raw, frame)))) await this.writeStored(part);
    } finally {
      giveFrame(frame);
    }
  }

  private async writeStored(bytes: Buffer): Promise<void> {
    this.storedHasher.update(bytes);
    await this.out.write(bytes);
  }

  private assertOpen(action: string): void {
    if (this.state !== 'open') throw new PgkeepError('INTERNAL', `cannot ${action} ${this.key}: the writer is ${this.state}`);
  }
}
