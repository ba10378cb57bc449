/**
 * The stored-file reader's pooled read buffers (repository/read-buffer-pool.ts): chunks it yields
 * stay the consumer's, a buffer is never reused while a frame read from it is being decompressed,
 * and reading many files does not allocate a buffer per chunk. The pool poisons every buffer given
 * back here, so any use after it was given back shows as wrong content or a failed checksum.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { COMPRESS_ALGS, type CompressAlg } from '../../src/core/backup-types.js';
import { chunkDecoderInto, defaultLevel } from '../../src/repository/codecs.js';
import { hashHex, initHashing } from '../../src/repository/hash.js';
import { readBuffers } from '../../src/repository/read-buffer-pool.js';
import { encodeFrameHeader, encodeStoredHeader, END_MARKER } from '../../src/repository/stored-file-format.js';
import { readStoredFile, StoredFileWriter, verifyStoredFile, type StoredFileResult } from '../../src/repository/stored-file.js';
import type { ByteRange, ObjectReader } from '../../src/storage/byte-store.js';
import { PosixStore } from '../../src/storage/posix-store.js';
import { sleep } from '../helpers/faults.js';

const MiB = 1024 * 1024;

/** About 9 MiB: compressible text with random stretches of 2.5 MiB (so some frames are stored raw), not frame aligned. */
function content(seed: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 12; i++) {
    parts.push(i % 5 === 3 ? randomBytes(2.5 * MiB) : Buffer.from(`file ${seed} part ${i} `.repeat(40_000)).subarray(0, 400_000 + i * 1000));
  }
  return Buffer.concat(parts);
}

async function store(s: PosixStore, key: string, alg: CompressAlg, data: Buffer) {
  const w = await StoredFileWriter.open(s, key, alg, defaultLevel(alg));
  for (let off = 0; off < data.length; off += 300_001) await w.write(data.subarray(off, off + 300_001));
  return w.finish();
}

/** Every chunk, kept as yielded (no copy). */
async function keepAll(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const kept: Buffer[] = [];
  for await (const c of it) kept.push(c);
  return kept;
}

describe('stored-file reader buffers', () => {
  let dir: string;
  let s: PosixStore;
  const data = [content(1), content(2), content(3)];
  beforeAll(async () => {
    await initHashing();
    readBuffers.poisonReturned = true;
  });
  afterAll(() => {
    readBuffers.poisonReturned = false;
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-bufs-'));
    s = new PosixStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  /** The three contents as f0, f1, f2. */
  const storeAll = async (alg: CompressAlg) => {
    const results: StoredFileResult[] = [];
    for (const [i, d] of data.entries()) results.push(await store(s, `f${i}`, alg, d));
    return results;
  };

  it.each(COMPRESS_ALGS)('%s: chunks a consumer keeps are never reused, while other files are read', async (alg) => {
    const results = await storeAll(alg);
    // Keep every chunk of the first file, then read the others (sequentially and at once), which
    // takes every pooled buffer again and poisons it when given back.
    const kept = await keepAll(readStoredFile(s, 'f0', alg, { verifyStoredChecksum: results[0]!.storedChecksum, verifyChecksum: results[0]!.checksum }));
    expect(kept.length).toBeGreaterThan(5);
    // Some frames are stored raw (their payload is yielded, so it must be copied out of the read buffer).
    if (alg !== 'none') expect(results[0]!.storedSize).toBeGreaterThan(4 * MiB);
    await keepAll(readStoredFile(s, 'f1', alg));
    await Promise.all([keepAll(readStoredFile(s, 'f2', alg)), keepAll(readStoredFile(s, 'f1', alg)), verifyStoredFile(s, 'f2', results[2]!)]);
    expect(Buffer.concat(kept).equals(data[0]!)).toBe(true);
  });

  it.each(['gzip', 'lz4', 'zstd'] as const)('%s: concurrent readers get exact content (no buffer reused under a decompression)', async (alg) => {
    const results = await storeAll(alg);
    const reads = [0, 1, 2, 0, 1, 2].map(async (i) => {
      const r = results[i]!;
      const got = Buffer.concat(await keepAll(readStoredFile(s, `f${i}`, alg, { verifyStoredChecksum: r.storedChecksum, verifyChecksum: r.checksum })));
      return got.equals(data[i]!);
    });
    expect(await Promise.all(reads)).toEqual([true, true, true, true, true, true]);
  });

  it('reading many compressed files reuses a few buffers instead of allocating per chunk', async () => {
    const results = await storeAll('zstd');
    // Warm the pool, then count what twenty more reads allocate.
    await keepAll(readStoredFile(s, 'f0', 'zstd'));
    const before = readBuffers.allocated;
    for (let n = 0; n < 20; n++) {
      const i = n % 3;
      await keepAll(readStoredFile(s, `f${i}`, 'zstd', { verifyStoredChecksum: results[i]!.storedChecksum }));
      await verifyStoredFile(s, `f${i}`, results[i]!);
    }
    // Each file is a few MiB of stored bytes: a buffer per chunk would be dozens.
    expect(readBuffers.allocated - before).toBeLessThanOrEqual(4);
  });

  it('gives its buffers back when the consumer stops early or the file is corrupt', async () => {
    const r = await store(s, 'f0', 'zstd', data[0]!);
    await keepAll(readStoredFile(s, 'f0', 'zstd'));
    const before = readBuffers.allocated;
    for (let n = 0; n < 10; n++) {
      for await (const _ of readStoredFile(s, 'f0', 'zstd')) break;
      await expect(verifyStoredFile(s, 'f0', { storedSize: r.storedSize, storedChecksum: '0000000000000000' })).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // let abandoned decompressions finish
    expect(readBuffers.allocated - before).toBeLessThanOrEqual(4);
  });

  it.each(COMPRESS_ALGS)('%s, lent chunks: exact content when each is used before the next is asked for', async (alg) => {
    const r = await store(s, 'f0', alg, data[0]!);
    await store(s, 'f1', alg, data[1]!);
    const copies: Buffer[] = [];
    for await (const c of readStoredFile(s, 'f0', alg, { lend: true, verifyStoredChecksum: r.storedChecksum, verifyChecksum: r.checksum })) {
      copies.push(Buffer.from(c));
      await keepAll(readStoredFile(s, 'f1', alg, { lend: true })); // takes pooled buffers meanwhile
    }
    expect(Buffer.concat(copies).equals(data[0]!)).toBe(true);
  });

  it('lent chunks of a plain file are views of two buffers reused by turns (one being read ahead), which go back to the pool', async () => {
    await store(s, 'f0', 'none', data[0]!);
    const kept = await keepAll(readStoredFile(s, 'f0', 'none', { lend: true }));
    expect(kept.length).toBeGreaterThan(5);
    expect(new Set(kept.map((c) => c.buffer)).size).toBe(2);
    expect(kept.every((c, i) => i === 0 || c.buffer !== kept[i - 1]!.buffer), 'by turns').toBe(true);
    // Kept past their turn, they no longer hold the file (each was overwritten, then poisoned).
    expect(Buffer.concat(kept).equals(data[0]!)).toBe(false);
    const before = readBuffers.allocated;
    for (let n = 0; n < 10; n++) await keepAll(readStoredFile(s, 'f0', 'none', { lend: true }));
    expect(readBuffers.allocated).toBe(before);
  });

  it('a plain file read ahead: a lent chunk is intact for as long as the consumer holds it, while the next is read', async () => {
    const r = await store(s, 'f0', 'none', data[0]!);
    let at = 0;
    let chunks = 0;
    for await (const c of readStoredFile(s, 'f0', 'none', { lend: true, verifyStoredChecksum: r.storedChecksum, verifyChecksum: r.checksum })) {
      // Long enough for the read ahead to land; it must land in the other buffer.
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(c.equals(data[0]!.subarray(at, at + c.length))).toBe(true);
      at += c.length;
      chunks++;
    }
    expect(at).toBe(data[0]!.length);
    expect(chunks).toBeGreaterThan(5);
  });

  it('a plain file read ahead: a consumer that stops early leaves no read in flight, no descriptor open, and its buffers in the pool', async () => {
    await store(s, 'f0', 'none', data[0]!);
    await keepAll(readStoredFile(s, 'f0', 'none', { lend: true }));
    const before = readBuffers.allocated;
    const fds = (await readdir('/proc/self/fd')).length;
    for (let n = 0; n < 10; n++) {
      for await (const _ of readStoredFile(s, 'f0', 'none', { lend: true })) break; // the second chunk is in flight here
    }
    expect((await readdir('/proc/self/fd')).length).toBe(fds);
    expect(readBuffers.allocated).toBe(before);
    // Readers beside consumers that stop early: a buffer given back with a read still landing in
    // it would be taken by the next reader and overwritten under it.
    await store(s, 'f1', 'none', data[1]!);
    const whole = async () => {
      const copies: Buffer[] = [];
      for await (const c of readStoredFile(s, 'f1', 'none', { lend: true })) {
        await new Promise((resolve) => setImmediate(resolve));
        copies.push(Buffer.from(c));
      }
      return Buffer.concat(copies).equals(data[1]!);
    };
    const stopEarly = async () => {
      for (let n = 0; n < 20; n++) for await (const _ of readStoredFile(s, 'f0', 'none', { lend: true })) break;
      return true;
    };
    expect(await Promise.all([whole(), stopEarly(), whole(), stopEarly(), whole()])).toEqual([true, true, true, true, true]);
  });

  it('a plain file read ahead: a consumer that stops early waits for the read in flight before its buffers go back', async () => {
    await store(s, 'f0', 'none', data[0]!);
    // The read ahead lands late: its bytes are read at once, then copied into the reader's
    // buffer only when the gate opens, as a slow device would fill it.
    const gated = new LateLandingStore(dir);
    const it = readStoredFile(gated, 'f0', 'none', { lend: true });
    expect((await it.next()).done).toBe(false);
    // The second chunk is in flight: read, and waiting to land.
    for (let i = 0; i < 1000 && gated.waiting === 0; i++) await sleep(1);
    expect(gated.waiting).toBe(1);
    let stopped = false;
    const stopping = it.return(undefined).then(() => (stopped = true));
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(stopped, 'the consumer stopped before the read in flight landed').toBe(false);
    // Whatever the pool hands out now must not be the buffer the late read lands in.
    const taken = [readBuffers.take(), readBuffers.take()];
    for (const b of taken) b.fill(0x5a);
    gated.open();
    await stopping;
    expect(taken.map((b) => b.every((x) => x === 0x5a))).toEqual([true, true]);
    for (const b of taken) readBuffers.give(b);
  });

  it('lent zstd chunks reuse one buffer where the codec decodes into it (zstd-napi), else are fresh buffers', async () => {
    const r = await store(s, 'f0', 'zstd', data[0]!);
    const kept = await keepAll(readStoredFile(s, 'f0', 'zstd', { lend: true, verifyStoredChecksum: r.storedChecksum }));
    expect(new Set(kept.map((c) => c.buffer)).size).toBe(chunkDecoderInto('zstd') ? 1 : kept.length);
  });

  it('reads a frame whose payload is larger than a read buffer', async () => {
    // gzip of random bytes is larger than its input; pgkeep's writer would store such a frame
    // raw, but the format allows compressed payloads up to twice the frame size.
    const raw = randomBytes(MiB);
    const gz = gzipSync(raw, { level: 1 });
    expect(gz.length).toBeGreaterThan(MiB);
    const small = Buffer.from('tail frame '.repeat(1000));
    const smallGz = gzipSync(small);
    const file = Buffer.concat([encodeStoredHeader('gzip'), encodeFrameHeader(raw.length, gz.length, false), gz, encodeFrameHeader(small.length, smallGz.length, false), smallGz, END_MARKER]);
    await writeFile(join(dir, 'big'), file);
    const got = Buffer.concat(await keepAll(readStoredFile(s, 'big', 'gzip', { verifyStoredChecksum: hashHex(file) })));
    expect(got.equals(Buffer.concat([raw, small]))).toBe(true);
  });
});

/**
 * A real store whose reads after the first land late: the bytes are read from the file at once
 * (while it is open), and copied into the caller's buffer only once `open()` is called.
 */
class LateLandingStore extends PosixStore {
  private reads = 0;
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  /** Reads read but not landed yet. */
  waiting = 0;

  open(): void {
    this.release();
  }

  override async openReader(key: string, range?: ByteRange): Promise<ObjectReader> {
    const inner = await super.openReader(key, range);
    return {
      get remaining() {
        return inner.remaining;
      },
      read: async (into: Uint8Array) => {
        if (this.reads++ === 0) return inner.read(into);
        const early = Buffer.alloc(into.length);
        const n = await inner.read(early);
        this.waiting++;
        await this.gate;
        this.waiting--;
        early.copy(into, 0, 0, n);
        return n;
      },
      close: () => inner.close(),
    };
  }
}
