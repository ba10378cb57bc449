import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CompressAlg } from '../../src/core/backup-types.js';
import { defaultLevel } from '../../src/repository/codecs.js';
import { hashHex } from '../../src/repository/hash.js';
import { PageDeltaReader, PageDeltaWriter, readPageDelta, type PageRun } from '../../src/repository/page-delta.js';
import { readBuffers } from '../../src/repository/read-buffer-pool.js';
import { StoredFileWriter } from '../../src/repository/stored-file.js';
import { PosixStore } from '../../src/storage/posix-store.js';

const BS = 8192;

/** A recognisable page: tag and block in the first words, a byte derived from both after. */
function page(tag: number, block: number): Buffer {
  const p = Buffer.alloc(BS, (tag * 13 + block * 7) & 0xff);
  p.writeUInt32LE(tag, 0);
  p.writeUInt32LE(block, 4);
  return p;
}

function pages(tag: number, start: number, count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => page(tag, start + i)));
}

interface ReadBack {
  runs: { start: number; count: number }[];
  blocks: Map<number, Buffer>;
  fileBlocks: number;
  pageCount: number;
}

async function readBack(store: PosixStore, key: string, alg: CompressAlg, storedChecksum?: string): Promise<ReadBack> {
  const reader = new PageDeltaReader(store, key, alg, storedChecksum !== undefined ? { blockSize: BS, verifyStoredChecksum: storedChecksum } : { blockSize: BS });
  const runs: { start: number; count: number }[] = [];
  const blocks = new Map<number, Buffer>();
  for await (const r of reader.runs()) {
    expect(r.pages.length).toBe(r.count * BS);
    runs.push({ start: r.start, count: r.count });
    for (let i = 0; i < r.count; i++) blocks.set(r.start + i, Buffer.from(r.pages.subarray(i * BS, (i + 1) * BS)));
  }
  return { runs, blocks, fileBlocks: reader.fileBlocks, pageCount: reader.pageCount };
}

async function drain(it: AsyncIterable<PageRun>): Promise<void> {
  for await (const _ of it) {
    // read everything
  }
}

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = (b[0] as number) ^ 0x5a;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

// Hand-built content for the malformation cases.
function header(opts: { magic?: string; version?: number; reserved?: number; blockSize?: number } = {}): Buffer {
  const h = Buffer.alloc(12);
  h.write(opts.magic ?? 'PGKD', 0, 'latin1');
  h.writeUInt16LE(opts.version ?? 1, 4);
  h.writeUInt16LE(opts.reserved ?? 0, 6);
  h.writeUInt32LE(opts.blockSize ?? BS, 8);
  return h;
}

function run(start: number, count: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(start, 0);
  h.writeUInt32LE(count, 4);
  return Buffer.concat([h, pages(1, start, count)]);
}

function trailer(fileBlocks: number, pageCount: number): Buffer {
  const t = Buffer.alloc(12);
  t.writeUInt32LE(0xffffffff, 0);
  t.writeUInt32LE(fileBlocks, 4);
  t.writeUInt32LE(pageCount, 8);
  return t;
}

describe('page-delta files', () => {
  let dir: string;
  let store: PosixStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-pagedelta-'));
    store = new PosixStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe.each(['none', 'zstd'] as const)('%s', (alg) => {
    it('round-trips pages, merging contiguous calls and splitting runs at 128', async () => {
      const w = await PageDeltaWriter.open(store, 'data/base/5/1259', alg, defaultLevel(alg), BS);
      await w.addPages(0, page(7, 0));
      await w.addPages(1, pages(7, 1, 2)); // merges with block 0
      await w.addPages(5, pages(7, 5, 300)); // 5..304: runs of 128, 128, 44
      await w.addPages(305, page(7, 305)); // extends the 44-page run
      await w.addPages(400, pages(7, 400, 127));
      await w.addPages(527, pages(7, 527, 3)); // fills that run to 128, then a new one of 2
      await w.addPages(600, Buffer.alloc(0)); // nothing
      expect(w.pageCount).toBe(3 + 300 + 1 + 127 + 3);
      const r = await w.finish(700);
      expect(r.pageCount).toBe(434);
      expect(r.size).toBe(12 + 434 * BS + 6 * 8 + 12);
      const stored = await readFile(join(dir, 'data/base/5/1259'));
      expect(r.storedSize).toBe(stored.length);
      expect(r.storedChecksum).toBe(hashHex(stored));

      const back = await readBack(store, 'data/base/5/1259', alg, r.storedChecksum);
      expect(back.runs).toEqual([
        { start: 0, count: 3 },
        { start: 5, count: 128 },
        { start: 133, count: 128 },
        { start: 261, count: 45 },
        { start: 400, count: 128 },
        { start: 528, count: 2 },
      ]);
      expect(back.fileBlocks).toBe(700);
      expect(back.pageCount).toBe(434);
      expect(back.blocks.size).toBe(434);
      for (const [b, p] of back.blocks) expect(p.equals(page(7, b)), `block ${b}`).toBe(true);
    });

    it('keeps runs whole where the pages it gathers fill its buffer: scattered pages, then a run given a page at a time', async () => {
      // 100 single pages (about 800 KiB gathered), then a run of 60 pages, one call each: the
      // buffer (one run's worth) fills while that run is open, which must go on as one run.
      const w = await PageDeltaWriter.open(store, 'data/base/5/2608', alg, defaultLevel(alg), BS);
      const singles = Array.from({ length: 100 }, (_, i) => i * 2);
      for (const b of singles) await w.addPages(b, page(9, b));
      for (let b = 300; b < 360; b++) await w.addPages(b, page(9, b));
      const r = await w.finish(400);
      expect(r.pageCount).toBe(160);
      expect(r.size).toBe(12 + 160 * BS + 101 * 8 + 12);
      const back = await readBack(store, 'data/base/5/2608', alg, r.storedChecksum);
      expect(back.runs).toEqual([...singles.map((start) => ({ start, count: 1 })), { start: 300, count: 60 }]);
      expect(back.blocks.size).toBe(160);
      for (const [b, p] of back.blocks) expect(p.equals(page(9, b)), `block ${b}`).toBe(true);
    });

    it('round-trips an empty delta that only records the block count', async () => {
      const w = await PageDeltaWriter.open(store, 'empty', alg, defaultLevel(alg), BS);
      const r = await w.finish(17);
      expect(r.pageCount).toBe(0);
      expect(r.size).toBe(24);
      const back = await readBack(store, 'empty', alg, r.storedChecksum);
      expect(back.runs).toEqual([]);
      expect(back.fileBlocks).toBe(17);
      expect(back.pageCount).toBe(0);
    });

    it('reads a large delta through reused buffers, not one per stored chunk', async () => {
      // 2,000 pages (about 16 MB, 16 stored chunks) in runs that do not line up with the chunks.
      const w = await PageDeltaWriter.open(store, 'big', alg, defaultLevel(alg), BS);
      for (let b = 0; b < 4000; b += 200) await w.addPages(b, pages(9, b, 100));
      const r = await w.finish(4000);
      expect(r.size).toBeGreaterThan(15 * 1024 * 1024);
      readBuffers.poisonReturned = true;
      try {
        await readBack(store, 'big', alg, r.storedChecksum); // fills this thread's pool
        const allocatedBefore = readBuffers.allocated;
        const backing = new Set<ArrayBufferLike>();
        const reader = new PageDeltaReader(store, 'big', alg, { blockSize: BS, verifyStoredChecksum: r.storedChecksum });
        let seen = 0;
        for await (const run of reader.runs()) {
          backing.add(run.pages.buffer);
          // Checked before the next run is asked for: that is as long as a run's view is valid.
          for (let i = 0; i < run.count; i++) expect(run.pages.subarray(i * BS, (i + 1) * BS).equals(page(9, run.start + i)), `block ${run.start + i}`).toBe(true);
          seen += run.count;
        }
        expect(seen).toBe(2000);
        // The pooled chunk buffer (two, by turns, for an uncompressed file: one is read ahead)
        // and the reader's scratch for runs that straddle two chunks.
        expect(backing.size).toBeLessThanOrEqual(alg === 'none' ? 3 : 2);
        expect(readBuffers.allocated).toBe(allocatedBefore);
      } finally {
        readBuffers.poisonReturned = false;
      }
    });

    it('catches a flipped stored byte', async () => {
      const w = await PageDeltaWriter.open(store, 'data/f', alg, defaultLevel(alg), BS);
      await w.addPages(3, pages(2, 3, 40));
      const r = await w.finish(50);
      await flipByte(join(dir, 'data/f'), Math.floor(r.storedSize / 2));
      await expect(readBack(store, 'data/f', alg, r.storedChecksum)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining('data/f') });
    });
  });

  it('addPagesNow gathers without a wait what fits, refuses (changing nothing) what needs the stored file, and makes the very bytes addPages makes', async () => {
    // Single pages (the buffer fills twice), a run given a page at a time across a fill, calls of
    // several pages, one that cuts a run at 128, and a call of a whole run (written directly).
    const calls: [number, number][] = [
      ...Array.from({ length: 300 }, (_, i): [number, number] => [i * 3, 1]),
      ...Array.from({ length: 90 }, (_, i): [number, number] => [1000 + i, 1]),
      [1100, 5], [1105, 120], [1225, 10], [1300, 128], [1500, 2],
    ];
    const plain = await PageDeltaWriter.open(store, 'plain', 'none', 0, BS);
    for (const [b, n] of calls) await plain.addPages(b, pages(4, b, n));
    const a = await plain.finish(1600);

    const now = await PageDeltaWriter.open(store, 'now', 'none', 0, BS);
    const refused: number[] = [];
    for (const [b, n] of calls) {
      const before = now.pageCount;
      if (now.addPagesNow(b, pages(4, b, n))) continue;
      expect(now.pageCount).toBe(before);
      refused.push(b);
      await now.addPages(b, pages(4, b, n));
    }
    const b = await now.finish(1600);
    // The first call (no buffer yet), the calls where the buffer was full, the whole run.
    expect(refused[0]).toBe(0);
    expect(refused).toContain(1300);
    expect(refused.length).toBeGreaterThanOrEqual(4);
    expect(refused.length).toBeLessThan(10);
    expect(b).toEqual(a);
    expect((await readFile(join(dir, 'now'))).equals(await readFile(join(dir, 'plain')))).toBe(true);
    const back = await readBack(store, 'now', 'none', b.storedChecksum);
    for (const [blk, p] of back.blocks) expect(p.equals(page(4, blk)), `block ${blk}`).toBe(true);
  });

  it('addPagesNow refuses blocks that do not ascend and partial pages, as addPages does', async () => {
    const w = await PageDeltaWriter.open(store, 'f', 'none', 0, BS);
    await w.addPages(5, pages(1, 5, 2));
    expect(() => w.addPagesNow(3, page(1, 3))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(() => w.addPagesNow(7, Buffer.alloc(100))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(w.addPagesNow(7, page(1, 7))).toBe(true);
    expect(w.pageCount).toBe(3);
    await w.abort();
  });

  it('lets the caller reuse its buffer once addPages resolved', async () => {
    const w = await PageDeltaWriter.open(store, 'f', 'none', 0, BS);
    const buf = pages(3, 0, 2);
    await w.addPages(0, buf);
    buf.fill(0);
    await w.addPages(2, page(3, 2));
    await w.finish(3);
    const back = await readBack(store, 'f', 'none');
    expect(back.runs).toEqual([{ start: 0, count: 3 }]);
    for (const [b, p] of back.blocks) expect(p.equals(page(3, b))).toBe(true);
  });

  it('refuses blocks that do not ascend, partial pages and a block count below the pages', async () => {
    const w = await PageDeltaWriter.open(store, 'f', 'none', 0, BS);
    await w.addPages(5, pages(1, 5, 2));
    await expect(w.addPages(3, page(1, 3))).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(w.addPages(6, page(1, 6))).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(w.addPages(7, Buffer.alloc(100))).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(w.finish(6)).rejects.toMatchObject({ code: 'INTERNAL' });
    await w.abort();
    expect(await store.exists('f')).toBe(false);
    await expect(PageDeltaWriter.open(store, 'g', 'none', 0, 1000)).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('knows the trailer only once every run was read', async () => {
    const w = await PageDeltaWriter.open(store, 'f', 'none', 0, BS);
    await w.addPages(0, page(1, 0));
    await w.finish(1);
    const reader = new PageDeltaReader(store, 'f', 'none', { blockSize: BS });
    expect(() => reader.fileBlocks).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    await drain(reader.runs());
    expect(reader.fileBlocks).toBe(1);
    // A consumer may stop early: the file is closed, nothing is thrown.
    for await (const r of readPageDelta(store, 'f', 'none', { blockSize: BS })) {
      expect(r.start).toBe(0);
      break;
    }
  });

  describe('malformed content is BACKUP_CORRUPT naming the key', () => {
    const cases: [string, Buffer][] = [
      ['bad magic', Buffer.concat([header({ magic: 'PGKX' }), trailer(0, 0)])],
      ['short header', Buffer.from('PGKD')],
      ['empty content', Buffer.alloc(0)],
      ['version 0', Buffer.concat([header({ version: 0 }), trailer(0, 0)])],
      ['non-zero reserved', Buffer.concat([header({ reserved: 1 }), trailer(0, 0)])],
      ['block size mismatch', Buffer.concat([header({ blockSize: 16384 }), trailer(0, 0)])],
      ['runs out of order', Buffer.concat([header(), run(5, 1), run(3, 1), trailer(10, 2)])],
      ['overlapping runs', Buffer.concat([header(), run(5, 3), run(6, 1), trailer(10, 4)])],
      ['a run of 0 pages', Buffer.concat([header(), run(5, 0), trailer(10, 0)])],
      ['a run of 129 pages', Buffer.concat([header(), run(0, 129), trailer(200, 129)])],
      ['truncated inside the pages', Buffer.concat([header(), run(0, 2)]).subarray(0, 12 + 8 + BS + 100)],
      ['truncated inside a run header', Buffer.concat([header(), run(0, 1), Buffer.from([1, 0, 0])])],
      ['truncated inside the trailer', Buffer.concat([header(), run(0, 1), trailer(1, 1).subarray(0, 10)])],
      ['missing trailer', Buffer.concat([header(), run(0, 1)])],
      ['page count mismatch', Buffer.concat([header(), run(0, 2), trailer(2, 3)])],
      ['pages past the block count', Buffer.concat([header(), run(0, 2), trailer(1, 2)])],
      ['bytes after the trailer', Buffer.concat([header(), run(0, 1), trailer(1, 1), Buffer.from([0])])],
    ];
    it.each(cases)('%s', async (_name, content) => {
      for (const alg of ['none', 'zstd'] as const) {
        const w = await StoredFileWriter.open(store, 'data/bad', alg, defaultLevel(alg));
        await w.write(content);
        const r = await w.finish();
        await expect(readBack(store, 'data/bad', alg, r.storedChecksum)).rejects.toMatchObject({
          code: 'BACKUP_CORRUPT',
          message: expect.stringContaining('data/bad'),
        });
      }
    });

    it('a newer version is REPO_FORMAT_UNSUPPORTED', async () => {
      const w = await StoredFileWriter.open(store, 'data/new', 'none', 0);
      await w.write(Buffer.concat([header({ version: 2 }), trailer(0, 0)]));
      await w.finish();
      await expect(readBack(store, 'data/new', 'none')).rejects.toMatchObject({ code: 'REPO_FORMAT_UNSUPPORTED', message: expect.stringContaining('data/new') });
    });
  });
});
