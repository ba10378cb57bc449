/**
 * Reading stored files back: content for restore, stored bytes for validate.
 *
 * Compressed frames are decompressed one at a time, in order, on the reading thread (codecs.ts,
 * `chunkDecoderInto`): each into a fresh buffer the consumer keeps, or, for a consumer that takes
 * lent chunks (`lend`), into one reused buffer, which allocates nothing per chunk. Structure
 * errors (bad header, impossible lengths, a chunk that does not decompress, a missing end marker)
 * fail at once; checksums can only be compared at the end, so a consumer must treat an error
 * thrown at any point as "this whole file is bad".
 */
import type { CompressAlg } from '../core/backup-types.js';
import { isPgkeepError, PgkeepError } from '../errors.js';
import { isMissingObjectError, type ByteRange, type ByteStore, type ObjectReader } from '../storage/byte-store.js';
import { chunkDecoderInto } from './codecs.js';
import { createHasher, initHashing, type Hasher } from './hash.js';
import { READ_BUFFER_SIZE, readBuffers } from './read-buffer-pool.js';
import {
  algorithmById,
  FRAME_HEADER_SIZE,
  MAX_STORED_FRAME,
  RAW_PAYLOAD_FLAG,
  STORED_CHUNK_SIZE,
  STORED_FORMAT_VERSION,
  STORED_HEADER_SIZE,
  STORED_MAGIC,
} from './stored-file-format.js';

const VALIDATE_HINT = 'run `pgkeep validate` to find every damaged backup';

export interface ReadStoredFileOptions {
  /** xxh64 the stored bytes must have (the manifest's storedChecksum). */
  verifyStoredChecksum?: string;
  /** xxh64 the content must have (the manifest's checksum). */
  verifyChecksum?: string;
  /** Bytes of a container's prefix to skip before the stored file begins (see StoredFileWriter.open). */
  offset?: number;
  /**
   * Lend the chunks instead of giving them: a yielded chunk is valid only until the generator
   * is resumed, when the reader may overwrite it, so the consumer must be done with it (written,
   * hashed, copied) before asking for the next. The reader then reads and decompresses into a
   * few reused buffers instead of a fresh one per chunk.
   */
  lend?: boolean;
}

/**
 * The content of a stored file, in chunks of at most 1 MiB. Each chunk belongs to the consumer,
 * which may keep it, unless `lend` is set (see there). The buffers the stored bytes are read
 * into are pooled (read-buffer-pool.ts) and never given to the consumer.
 */
export async function* readStoredFile(store: ByteStore, key: string, alg: CompressAlg, opts: ReadStoredFileOptions = {}): AsyncGenerator<Buffer> {
  await initHashing();
  const storedHasher = opts.verifyStoredChecksum !== undefined ? createHasher() : undefined;
  // Uncompressed, the stored bytes are the content and the two checksums one (stored-file.ts):
  // hashed once, and that digest checked against both.
  const sameBytes = alg === 'none' && storedHasher !== undefined && opts.verifyChecksum === opts.verifyStoredChecksum;
  const contentHasher = opts.verifyChecksum === undefined ? undefined : sameBytes ? storedHasher : createHasher();
  const source = await openSource(store, key, opts.offset ? { start: opts.offset } : undefined);
  try {
    if (alg === 'none') {
      // The stored bytes are the content, read one chunk ahead: the next read is in flight while
      // the consumer has this chunk. Lent: two pooled buffers by turns, the one the consumer
      // had read into again once it asks for the next. Given: a buffer of the consumer's own
      // per chunk, so that nothing is copied.
      const pooled = opts.lend ? [readBuffers.take(), readBuffers.take()] : undefined;
      let turn = 0;
      const readNext = (): Promise<Buffer> | undefined => {
        const want = Math.min(STORED_CHUNK_SIZE, source.remaining);
        if (want === 0) return undefined;
        const buf = pooled ? pooled[turn]! : Buffer.allocUnsafe(want);
        turn ^= 1;
        const read = source.read(buf.subarray(0, want)).then((n) => buf.subarray(0, n));
        read.catch(() => undefined); // thrown where it is waited for
        return read;
      };
      let pending = readNext();
      try {
        while (pending) {
          const chunk = await pending;
          pending = undefined;
          if (chunk.length === 0) break;
          pending = readNext();
          storedHasher?.update(chunk);
          if (!sameBytes) contentHasher?.update(chunk);
          yield chunk;
        }
      } finally {
        // A read still in flight ends before its buffer goes back to the pool and the file is closed.
        await pending?.catch(() => undefined);
        if (pooled) for (const b of pooled) readBuffers.give(b);
      }
    } else {
      const reader = new ExactReader(source, storedHasher);
      try {
        for await (const chunk of readFrames(reader, key, alg, opts.lend === true)) {
          contentHasher?.update(chunk);
          yield chunk;
        }
      } finally {
        reader.release();
      }
    }
  } finally {
    await source.close();
  }
  if (storedHasher && opts.verifyStoredChecksum !== undefined) {
    const actual = storedHasher.digestHex();
    if (actual !== opts.verifyStoredChecksum) throw corrupt(key, `stored checksum is ${actual}, expected ${opts.verifyStoredChecksum}`);
  }
  if (contentHasher && opts.verifyChecksum !== undefined) {
    const actual = contentHasher.digestHex();
    if (actual !== opts.verifyChecksum) throw corrupt(key, `content checksum is ${actual}, expected ${opts.verifyChecksum}`);
  }
}

/**
 * Check a stored file's size and stored checksum without decompressing it (for validate).
 * Throws BACKUP_CORRUPT naming the key and what differs.
 */
export async function verifyStoredFile(store: ByteStore, key: string, expected: { storedSize: number; storedChecksum: string }): Promise<void> {
  await initHashing();
  const source = await openSource(store, key);
  const hasher = createHasher();
  const buf = readBuffers.take();
  try {
    if (source.remaining !== expected.storedSize) throw corrupt(key, `is ${source.remaining} bytes, expected ${expected.storedSize}`);
    for (;;) {
      const n = await source.read(buf);
      if (n === 0) break;
      hasher.update(buf.subarray(0, n));
    }
  } finally {
    readBuffers.give(buf);
    await source.close();
  }
  const actual = hasher.digestHex();
  if (actual !== expected.storedChecksum) throw corrupt(key, `stored checksum is ${actual}, expected ${expected.storedChecksum}`);
}

async function openSource(store: ByteStore, key: string, range?: ByteRange): Promise<ObjectReader> {
  try {
    return await store.openReader(key, range);
  } catch (e) {
    if (isMissingObjectError(e)) throw corrupt(key, 'is missing');
    throw e;
  }
}

/** Checks the stored-file header. */
async function readHeader(reader: ExactReader, key: string, alg: Exclude<CompressAlg, 'none'>): Promise<void> {
  const header = await reader.read(STORED_HEADER_SIZE);
  if (header.length < STORED_HEADER_SIZE || !header.subarray(0, 4).equals(STORED_MAGIC)) {
    throw corrupt(key, 'has no stored-file header');
  }
  const version = header.readUInt8(4);
  if (version > STORED_FORMAT_VERSION) {
    throw new PgkeepError('REPO_FORMAT_UNSUPPORTED', `stored file ${key} has format version ${version}, this pgkeep reads up to ${STORED_FORMAT_VERSION}`, 'upgrade pgkeep');
  }
  if (version < 1) throw corrupt(key, `has invalid format version ${version}`);
  const storedAlg = algorithmById(header.readUInt8(5));
  if (storedAlg !== alg) throw corrupt(key, `is stored with ${storedAlg ?? 'an unknown algorithm'}, the manifest says ${alg}`);
}

interface Frame {
  rawLength: number;
  isRaw: boolean;
  /** A view of the reader's buffer: valid until the reader's next read. */
  payload: Buffer;
}

/** The next frame, or undefined at the end marker (after checking that nothing follows it). */
async function readFrame(reader: ExactReader, key: string, frame: number): Promise<Frame | undefined> {
  const fh = await reader.read(FRAME_HEADER_SIZE);
  if (fh.length < FRAME_HEADER_SIZE) throw corrupt(key, `ends inside frame ${frame} (truncated)`);
  const rawLength = fh.readUInt32LE(0);
  const word = fh.readUInt32LE(4);
  if (rawLength === 0 && word === 0) {
    if ((await reader.read(1)).length > 0) throw corrupt(key, 'has bytes after its end marker');
    return undefined;
  }
  const isRaw = (word & RAW_PAYLOAD_FLAG) !== 0;
  const storedLength = word & ~RAW_PAYLOAD_FLAG;
  if (rawLength === 0 || rawLength > STORED_CHUNK_SIZE || storedLength === 0 || storedLength > MAX_STORED_FRAME || (isRaw && storedLength !== rawLength)) {
    throw corrupt(key, `frame ${frame} has impossible lengths (raw ${rawLength}, stored ${storedLength})`);
  }
  const payload = await reader.readPayload(storedLength);
  if (payload.length < storedLength) throw corrupt(key, `ends inside frame ${frame} (truncated)`);
  return { rawLength, isRaw, payload };
}

/**
 * Frames decompressed one at a time on this thread (every codec decodes synchronously, so
 * decoding ahead would overlap nothing). Given: each into a fresh buffer the consumer owns. Lent:
 * each into one pooled buffer, overwritten by the next frame.
 */
async function* readFrames(reader: ExactReader, key: string, alg: Exclude<CompressAlg, 'none'>, lend: boolean): AsyncGenerator<Buffer> {
  await readHeader(reader, key, alg);
  const decodeInto = chunkDecoderInto(alg)!;
  const lent = lend ? readBuffers.take() : undefined;
  try {
    for (let frame = 0; ; frame++) {
      const f = await readFrame(reader, key, frame);
      if (!f) break;
      // Never a view of the payload: the reader reads into its buffer again.
      const out = lent ?? Buffer.allocUnsafe(f.rawLength);
      try {
        if (f.isRaw) f.payload.copy(out);
        else decodeInto(f.payload, f.rawLength, out);
      } catch (e) {
        throw corrupt(key, `frame ${frame}: ${isPgkeepError(e) ? e.message : String(e)}`);
      }
      yield out.subarray(0, f.rawLength);
    }
  } finally {
    if (lent) readBuffers.give(lent);
  }
}

/**
 * Exact-length reads over an object, through one pooled read buffer, hashing every byte that
 * comes in. A view it gives is valid until the next read: each frame is decoded (or copied)
 * before the next is read, so the buffer can be refilled in place.
 */
class ExactReader {
  private buf: Buffer | undefined;
  /** The unread bytes are buf[start, end). */
  private start = 0;
  private end = 0;
  private eof = false;

  constructor(
    private readonly source: ObjectReader,
    private readonly hasher: Hasher | undefined,
  ) {}

  /** `n` bytes (at most a pooled buffer's size), or fewer only at the end; valid until the next call. */
  async read(n: number): Promise<Buffer> {
    if (n > READ_BUFFER_SIZE) throw new PgkeepError('INTERNAL', `read of ${n} bytes is larger than a read buffer`);
    if (this.end - this.start < n && !this.eof) await this.fill();
    const buf = this.buf;
    if (!buf) return Buffer.alloc(0);
    const take = Math.min(n, this.end - this.start);
    const out = buf.subarray(this.start, this.start + take);
    this.start += take;
    return out;
  }

  /** A frame's payload: like `read`, but of any length the format allows (fewer bytes only at the end). */
  async readPayload(n: number): Promise<Buffer> {
    if (n <= READ_BUFFER_SIZE) return this.read(n);
    // Larger than any frame pgkeep writes (the format allows up to MAX_STORED_FRAME): a buffer of its own.
    const own = Buffer.allocUnsafe(n);
    const have = this.buf ? this.buf.copy(own, 0, this.start, this.end) : 0;
    this.start = this.end;
    const got = this.eof ? 0 : await this.readInto(own.subarray(have));
    return own.subarray(0, have + got);
  }

  /** Gives the buffer back to the pool. Reads end here. */
  release(): void {
    if (this.buf) readBuffers.give(this.buf);
    this.buf = undefined;
    this.start = this.end = 0;
    this.eof = true;
  }

  /** Moves the unread bytes to the front of the buffer and reads behind them as much as fits. */
  private async fill(): Promise<void> {
    const left = this.end - this.start;
    if (this.buf) this.buf.copyWithin(0, this.start, this.end);
    else this.buf = readBuffers.take();
    this.start = 0;
    this.end = left;
    this.end += await this.readInto(this.buf.subarray(left));
  }

  private async readInto(into: Buffer): Promise<number> {
    const got = await this.source.read(into);
    this.hasher?.update(into.subarray(0, got));
    if (got < into.length) this.eof = true;
    return got;
  }
}

function corrupt(key: string, what: string): PgkeepError {
  return new PgkeepError('BACKUP_CORRUPT', `stored file ${key} ${what}`, VALIDATE_HINT);
}
