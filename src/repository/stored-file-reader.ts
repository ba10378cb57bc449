/**
 * Reading stored files back: content for restore, stored bytes for validate.
 *
 * Compressed frames are decompressed a few at a time ahead of the consumer (each frame is
 * independent), and yielded in order. Structure errors (bad header, impossible lengths, a chunk
 * that does not decompress, a missing end marker) fail at once; checksums can only be compared
 * at the end, so a consumer must treat an error thrown at any point as "this whole file is bad".
 */
import type { CompressAlg } from '../core/backup-types.js';
import { isPgkeepError, PgkeepError } from '../errors.js';
import { isMissingObjectError, type ByteStore } from '../storage/byte-store.js';
import { decompressChunk } from './codecs.js';
import { createHasher, initHashing, type Hasher } from './hash.js';
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

const DECOMPRESS_AHEAD = 3;
const VALIDATE_HINT = 'run `pgkeep validate` to find every damaged backup';

export interface ReadStoredFileOptions {
  /** xxh64 the stored bytes must have (the manifest's storedChecksum). */
  verifyStoredChecksum?: string;
  /** xxh64 the content must have (the manifest's checksum). */
  verifyChecksum?: string;
  /** Bytes of a container's prefix to skip before the stored file begins (see StoredFileWriter.open). */
  offset?: number;
}

/** The content of a stored file, in chunks of at most 1 MiB. */
export async function* readStoredFile(store: ByteStore, key: string, alg: CompressAlg, opts: ReadStoredFileOptions = {}): AsyncGenerator<Buffer> {
  await initHashing();
  const storedHasher = opts.verifyStoredChecksum !== undefined ? createHasher() : undefined;
  const contentHasher = opts.verifyChecksum !== undefined ? createHasher() : undefined;
  const reader = new ExactReader(store.openRead(key, opts.offset ? { start: opts.offset } : undefined), storedHasher, key);
  try {
    if (alg === 'none') {
      for (;;) {
        const chunk = await reader.readUpTo(STORED_CHUNK_SIZE);
        if (chunk.length === 0) break;
        contentHasher?.update(chunk);
        yield chunk;
      }
    } else {
      for await (const chunk of readFrames(reader, key, alg)) {
        contentHasher?.update(chunk);
        yield chunk;
      }
    }
  } finally {
    await reader.close();
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
  const st = await store.stat(key);
  if (!st) throw corrupt(key, 'is missing');
  if (st.size !== expected.storedSize) throw corrupt(key, `is ${st.size} bytes, expected ${expected.storedSize}`);
  const hasher = createHasher();
  try {
    for await (const chunk of store.openRead(key)) hasher.update(chunk);
  } catch (e) {
    if (isMissingObjectError(e)) throw corrupt(key, 'is missing');
    throw e;
  }
  const actual = hasher.digestHex();
  if (actual !== expected.storedChecksum) throw corrupt(key, `stored checksum is ${actual}, expected ${expected.storedChecksum}`);
}

async function* readFrames(reader: ExactReader, key: string, alg: Exclude<CompressAlg, 'none'>): AsyncGenerator<Buffer> {
  const header = await reader.readUpTo(STORED_HEADER_SIZE);
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

  const ahead: Promise<Buffer>[] = [];
  for (let frame = 0; ; frame++) {
    const fh = await reader.readUpTo(FRAME_HEADER_SIZE);
    if (fh.length < FRAME_HEADER_SIZE) throw corrupt(key, `ends inside frame ${frame} (truncated)`);
    const rawLength = fh.readUInt32LE(0);
    const word = fh.readUInt32LE(4);
    if (rawLength === 0 && word === 0) break;
    const isRaw = (word & RAW_PAYLOAD_FLAG) !== 0;
    const storedLength = word & ~RAW_PAYLOAD_FLAG;
    if (rawLength === 0 || rawLength > STORED_CHUNK_SIZE || storedLength === 0 || storedLength > MAX_STORED_FRAME || (isRaw && storedLength !== rawLength)) {
      throw corrupt(key, `frame ${frame} has impossible lengths (raw ${rawLength}, stored ${storedLength})`);
    }
    const payload = await reader.readUpTo(storedLength);
    if (payload.length < storedLength) throw corrupt(key, `ends inside frame ${frame} (truncated)`);
    const job = isRaw
      ? Promise.resolve(payload)
      : decompressChunk(alg, payload, rawLength).catch((e: unknown) => {
          throw corrupt(key, `frame ${frame}: ${isPgkeepError(e) ? e.message : String(e)}`);
        });
    // Marked handled now; the error is raised when the frame's turn comes.
    job.catch(() => undefined);
    ahead.push(job);
    if (ahead.length >= DECOMPRESS_AHEAD) yield await (ahead.shift() as Promise<Buffer>);
  }
  if ((await reader.readUpTo(1)).length > 0) throw corrupt(key, 'has bytes after its end marker');
  while (ahead.length > 0) yield await (ahead.shift() as Promise<Buffer>);
}

/** Exact-length reads over a chunk stream, hashing every byte that comes in. */
class ExactReader {
  private readonly it: AsyncIterator<Buffer>;
  private readonly bufs: Buffer[] = [];
  private available = 0;
  private done = false;

  constructor(
    source: AsyncIterable<Buffer>,
    private readonly hasher: Hasher | undefined,
    private readonly key: string,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** `n` bytes, or fewer only at the end of the stream. */
  async readUpTo(n: number): Promise<Buffer> {
    while (this.available < n && !this.done) {
      let r: IteratorResult<Buffer>;
      try {
        r = await this.it.next();
      } catch (e) {
        if (isMissingObjectError(e)) throw corrupt(this.key, 'is missing');
        throw e;
      }
      if (r.done) {
        this.done = true;
        break;
      }
      this.hasher?.update(r.value);
      this.bufs.push(r.value);
      this.available += r.value.length;
    }
    const take = Math.min(n, this.available);
    this.available -= take;
    const first = this.bufs[0];
    // Zero-copy when one source chunk holds it all: the store never reuses its buffers.
    if (first && first.length >= take) {
      const out = first.subarray(0, take);
      if (first.length === take) this.bufs.shift();
      else this.bufs[0] = first.subarray(take);
      return out;
    }
    const out = Buffer.allocUnsafe(take);
    let off = 0;
    while (off < take) {
      const b = this.bufs[0] as Buffer;
      const n2 = Math.min(b.length, take - off);
      b.copy(out, off, 0, n2);
      off += n2;
      if (n2 === b.length) this.bufs.shift();
      else this.bufs[0] = b.subarray(n2);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function corrupt(key: string, what: string): PgkeepError {
  return new PgkeepError('BACKUP_CORRUPT', `stored file ${key} ${what}`, VALIDATE_HINT);
}
