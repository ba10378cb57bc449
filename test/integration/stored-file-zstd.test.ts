/**
 * zstd stored files since compression moved to zstd-napi, on the writer's own thread, into pooled
 * frame buffers (repository/stored-file.ts): files written side by side on one thread share the
 * pool and the thread's compression context, incompressible frames are stored raw, and files
 * written by earlier builds (through @mongodb-js/zstd 1.2.2) still read back exactly.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashHex } from '../../src/repository/hash.js';
import { FRAME_HEADER_SIZE, RAW_PAYLOAD_FLAG, STORED_CHUNK_SIZE, STORED_HEADER_SIZE } from '../../src/repository/stored-file-format.js';
import { readStoredFile, StoredFileWriter, verifyStoredFile } from '../../src/repository/stored-file.js';
import { PosixStore } from '../../src/storage/posix-store.js';
import { storedFileFixtureContent } from '../helpers/fixture-content.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'stored-files');

async function readAll(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Each frame's raw flag, walking the stored file's frame headers. */
function frameKinds(stored: Buffer): ('raw' | 'zstd')[] {
  const kinds: ('raw' | 'zstd')[] = [];
  let off = STORED_HEADER_SIZE;
  for (;;) {
    const rawLength = stored.readUInt32LE(off);
    const word = stored.readUInt32LE(off + 4);
    if (rawLength === 0 && word === 0) return kinds; // the end marker
    kinds.push(word & RAW_PAYLOAD_FLAG ? 'raw' : 'zstd');
    off += FRAME_HEADER_SIZE + (word & ~RAW_PAYLOAD_FLAG);
  }
}

describe('zstd stored files', () => {
  let dir: string;
  let store: PosixStore;
  beforeEach(async () => {
    dir = await makeTempDir('zstd');
    store = new PosixStore(dir);
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('reads a file written through @mongodb-js/zstd 1.2.2 by an earlier build', async () => {
    // Made by commit dfdef66's StoredFileWriter (fixtures/stored-files/README.md).
    const expected = { size: 2621440, storedSize: 1420045, checksum: '2fabba280f4ccef2', storedChecksum: 'db3dee057bd584b0' };
    await mkdir(join(dir, 'old'));
    await copyFile(join(FIXTURES, 'zstd-mongodb-js-1.2.2.stored'), join(dir, 'old', 'f'));
    await verifyStoredFile(store, 'old/f', expected);
    const back = await readAll(readStoredFile(store, 'old/f', 'zstd', { verifyStoredChecksum: expected.storedChecksum, verifyChecksum: expected.checksum }));
    expect(back.equals(storedFileFixtureContent())).toBe(true);
    expect(frameKinds(await readFile(join(dir, 'old', 'f')))).toEqual(['zstd', 'zstd', 'raw']);
    // Written again now: the same content, and again text frames compressed, the noise raw.
    const w = await StoredFileWriter.open(store, 'new', 'zstd', 1);
    await w.write(storedFileFixtureContent());
    const r = await w.finish();
    expect(r.checksum).toBe(expected.checksum);
    expect(frameKinds(await readFile(join(dir, 'new')))).toEqual(['zstd', 'zstd', 'raw']);
    expect((await readAll(readStoredFile(store, 'new', 'zstd', { verifyStoredChecksum: r.storedChecksum }))).equals(storedFileFixtureContent())).toBe(true);
  });

  it('writes several files at once on one thread, at two levels, each exactly', async () => {
    const text = (seed: number) => Buffer.from(Array.from({ length: 90_000 }, (_, i) => `line ${seed} ${(i * seed) % 9973}\n`).join(''), 'latin1');
    const contents = [text(3), Buffer.concat([randomBytes(STORED_CHUNK_SIZE), text(5)]), text(7), Buffer.concat([text(11), randomBytes(3 * STORED_CHUNK_SIZE + 17)])];
    const writers = await Promise.all(contents.map((_, i) => StoredFileWriter.open(store, `f${i}`, 'zstd', i % 2 === 0 ? 1 : 9)));
    // Interleaved: each writer's frame is written (awaited) while the others compress theirs.
    const piece = 300_001;
    const longest = Math.max(...contents.map((c) => c.length));
    for (let off = 0; off < longest; off += piece) {
      await Promise.all(contents.map((c, i) => (off < c.length ? writers[i]!.write(c.subarray(off, off + piece)) : undefined)));
    }
    const results = await Promise.all(writers.map((w) => w.finish()));
    for (const [i, c] of contents.entries()) {
      const r = results[i]!;
      expect(r.checksum).toBe(hashHex(c));
      expect(r.storedChecksum).toBe(hashHex(await readFile(join(dir, `f${i}`))));
      const back = await readAll(readStoredFile(store, `f${i}`, 'zstd', { verifyStoredChecksum: r.storedChecksum, verifyChecksum: r.checksum }));
      expect(back.equals(c)).toBe(true);
    }
    // Level 9 makes smaller frames than level 1 from the same kind of text.
    const level1 = await StoredFileWriter.open(store, 'l1', 'zstd', 1);
    await level1.write(text(7));
    expect(results[2]!.storedSize).toBe((await level1.finish()).storedSize);
    const level9 = await StoredFileWriter.open(store, 'l9', 'zstd', 9);
    await level9.write(text(7));
    expect((await level9.finish()).storedSize).toBeLessThan(results[2]!.storedSize);
  });

  it('stores incompressible frames raw: headers are all it adds', async () => {
    const noise = randomBytes(2 * STORED_CHUNK_SIZE + 5);
    const w = await StoredFileWriter.open(store, 'noise', 'zstd', 1);
    await w.write(noise);
    const r = await w.finish();
    expect(r.storedSize).toBe(STORED_HEADER_SIZE + 3 * FRAME_HEADER_SIZE + noise.length + FRAME_HEADER_SIZE);
    expect(frameKinds(await readFile(join(dir, 'noise')))).toEqual(['raw', 'raw', 'raw']);
    expect((await readAll(readStoredFile(store, 'noise', 'zstd', { verifyChecksum: r.checksum }))).equals(noise)).toBe(true);
  });
});
