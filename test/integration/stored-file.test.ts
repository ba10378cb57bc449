import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { COMPRESS_ALGS, type CompressAlg } from '../../src/core/backup-types.js';
import { defaultLevel } from '../../src/repository/codecs.js';
import { hashHex, initHashing } from '../../src/repository/hash.js';
import { readStoredFile, StoredFileWriter, verifyStoredFile } from '../../src/repository/stored-file.js';
import { PosixStore } from '../../src/storage/posix-store.js';

const MiB = 1024 * 1024;

/** 5 MiB and a bit: alternating compressible text and random bytes, not chunk aligned. */
function mixedContent(): Buffer {
  const parts: Buffer[] = [];
  const text = Buffer.from('PostgreSQL page-ish text 0123456789 '.repeat(8000));
  for (let i = 0; i < 20; i++) parts.push(i % 2 === 0 ? text.subarray(0, 256 * 1024) : randomBytes(256 * 1024));
  parts.push(randomBytes(12345));
  return Buffer.concat(parts);
}

async function writeInPieces(store: PosixStore, key: string, alg: CompressAlg, content: Buffer) {
  const w = await StoredFileWriter.open(store, key, alg, defaultLevel(alg));
  // Uneven pieces, so chunk boundaries fall inside writes.
  const sizes = [8192, 100_003, 1, 3 * MiB];
  let off = 0;
  for (let i = 0; off < content.length; i++) {
    const n = Math.min(sizes[i % sizes.length] as number, content.length - off);
    await w.write(content.subarray(off, off + n));
    off += n;
  }
  return w.finish();
}

async function readAll(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) {
    expect(c.length).toBeLessThanOrEqual(MiB);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = (b[0] as number) ^ 0x5a;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

describe('stored files', () => {
  let dir: string;
  let store: PosixStore;
  let content: Buffer;
  beforeAll(async () => {
    await initHashing();
    content = mixedContent();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-stored-'));
    store = new PosixStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe.each(COMPRESS_ALGS)('%s', (alg) => {
    it('round-trips a 5 MiB mixed file with stable checksums', async () => {
      const r = await writeInPieces(store, 'data/f', alg, content);
      expect(r.size).toBe(content.length);
      expect(r.checksum).toBe(hashHex(content));
      const stored = await readFile(join(dir, 'data/f'));
      expect(r.storedSize).toBe(stored.length);
      expect(r.storedChecksum).toBe(hashHex(stored));
      if (alg === 'none') {
        expect(stored.equals(content)).toBe(true);
        expect(r.storedChecksum).toBe(r.checksum);
      } else {
        expect(stored.subarray(0, 4).toString('latin1')).toBe('PGKC');
        expect(r.storedSize).toBeLessThan(content.length);
      }
      const back = await readAll(readStoredFile(store, 'data/f', alg, { verifyStoredChecksum: r.storedChecksum, verifyChecksum: r.checksum }));
      expect(back.equals(content)).toBe(true);
      await verifyStoredFile(store, 'data/f', r);

      const again = await writeInPieces(store, 'data/g', alg, content);
      expect(again).toEqual(r);
    });

    it('round-trips a zero-length file', async () => {
      const w = await StoredFileWriter.open(store, 'empty', alg, defaultLevel(alg));
      const r = await w.finish();
      expect(r.size).toBe(0);
      expect(r.checksum).toBe(hashHex(new Uint8Array(0)));
      expect(r.storedSize).toBe(alg === 'none' ? 0 : 16);
      expect((await readAll(readStoredFile(store, 'empty', alg, { verifyStoredChecksum: r.storedChecksum }))).length).toBe(0);
      await verifyStoredFile(store, 'empty', r);
    });

    it('catches a flipped byte', async () => {
      const r = await writeInPieces(store, 'data/f', alg, content);
      await flipByte(join(dir, 'data/f'), Math.floor(r.storedSize / 2));
      await expect(verifyStoredFile(store, 'data/f', r)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining('data/f') });
      await expect(readAll(readStoredFile(store, 'data/f', alg, { verifyStoredChecksum: r.storedChecksum }))).rejects.toMatchObject({
        code: 'BACKUP_CORRUPT',
        message: expect.stringContaining('data/f'),
      });
    });

    it('catches truncation', async () => {
      const r = await writeInPieces(store, 'data/f', alg, content);
      await truncate(join(dir, 'data/f'), r.storedSize - 100);
      await expect(verifyStoredFile(store, 'data/f', r)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining('bytes, expected') });
      // Compressed files know their own end; plain copies need the checksum.
      const opts = alg === 'none' ? { verifyStoredChecksum: r.storedChecksum } : {};
      await expect(readAll(readStoredFile(store, 'data/f', alg, opts))).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
    });

    it('reports a missing stored file as corrupt', async () => {
      await expect(verifyStoredFile(store, 'data/none', { storedSize: 1, storedChecksum: '0000000000000000' })).rejects.toMatchObject({
        code: 'BACKUP_CORRUPT',
        message: expect.stringContaining('missing'),
      });
      await expect(readAll(readStoredFile(store, 'data/none', alg))).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
    });
  });

  it.each(['gzip', 'lz4', 'zstd'] as const)('%s: a file cut exactly at a frame boundary is refused without checksums', async (alg) => {
    const r = await writeInPieces(store, 'f', alg, content);
    await truncate(join(dir, 'f'), r.storedSize - 8); // drop the end marker only
    await expect(readAll(readStoredFile(store, 'f', alg))).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining('truncated') });
  });

  it.each(['gzip', 'lz4', 'zstd'] as const)('%s: incompressible chunks are stored raw, not inflated', async (alg) => {
    const random = randomBytes(2.5 * MiB);
    const r = await writeInPieces(store, 'r', alg, random);
    // header + 3 frame headers + end marker, nothing more
    expect(r.storedSize).toBe(random.length + 8 + 3 * 8 + 8);
    expect((await readAll(readStoredFile(store, 'r', alg, { verifyStoredChecksum: r.storedChecksum }))).equals(random)).toBe(true);
  });

  it('refuses a file read with the wrong algorithm', async () => {
    await writeInPieces(store, 'f', 'zstd', content.subarray(0, 5000));
    await expect(readAll(readStoredFile(store, 'f', 'lz4'))).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining('zstd') });
  });

  it('refuses garbage where a compressed file should be', async () => {
    await writeFile(join(dir, 'g'), randomBytes(4096));
    await expect(readAll(readStoredFile(store, 'g', 'gzip'))).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining('header') });
  });

  it('abort leaves nothing behind, also after writes', async () => {
    const w = await StoredFileWriter.open(store, 'a/f', 'zstd', 3);
    await w.write(content);
    await w.abort();
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(join(dir, 'a'))).toEqual([]);
  });

  it("stores runs of zeros as holes with 'none', and reads them back as zeros", async () => {
    // A WAL segment copied after a backup's stop: a few records, then zeros to 16 MiB.
    const segment = Buffer.alloc(16 * MiB);
    randomBytes(300).copy(segment, 0);
    randomBytes(8192).copy(segment, 5 * MiB + 100);
    const w = await StoredFileWriter.open(store, 'pg_wal/seg', 'none', 0);
    for (let off = 0; off < segment.length; off += MiB) await w.write(segment.subarray(off, off + MiB));
    const r = await w.finish();
    expect(r.size).toBe(segment.length);
    expect(r.storedSize).toBe(segment.length);
    expect(r.checksum).toBe(hashHex(segment));
    expect(r.storedChecksum).toBe(r.checksum);
    const onDisk = await stat(join(dir, 'pg_wal/seg'));
    expect(onDisk.size).toBe(segment.length);
    // Two 64 KiB slices hold data (the second straddles one boundary: three), the rest is holes.
    expect(onDisk.blocks * 512).toBeLessThanOrEqual(4 * 64 * 1024);
    expect((await readFile(join(dir, 'pg_wal/seg'))).equals(segment)).toBe(true);
    await verifyStoredFile(store, 'pg_wal/seg', r);
  });

  it('refuses an invalid level before creating anything', async () => {
    await expect(StoredFileWriter.open(store, 'f', 'zstd', 99)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', hint: expect.stringContaining('1 to 22') });
    expect(await store.exists('f')).toBe(false);
  });
});
