// readSelectedPages (app/backup/read-data-file.ts): the reader of a PTRACK or PAGE backup's listed
// pages reads them synchronously while they come from the page cache, and once its reads look like
// the disk's, keeps several in flight, each in its own slot of one buffer. These tests read real
// files of checksummed pages both ways (the bound of a slow read set so that every read is slow,
// or none) and check that every page comes back in order and unharmed, whatever the slots, runs
// and buffer sizes, that torn pages are re-read in their slot, and that the file is closed however
// the reading ends.
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readSelectedPages, SELECTED_READS_IN_FLIGHT, SLOW_SYNC_READS_TO_SWITCH, type PageCheckCounters, type PageCheckOptions } from '../../src/app/backup/read-data-file.js';
import { SMALL_FILE_BYTES } from '../../src/app/backup/source-file.js';
import { pageChecksum } from '../helpers/page-checksum.js';
import { makeTempDir } from '../helpers/tmp.js';

const BS = 8192;
const FILE_BLOCKS = 600;
const START_LSN = 0x5_0000_0000n;

/** A valid empty heap page at `block` with `lsn`, its block number written in its free space, checksummed. */
function page(block: number, lsn: bigint): Buffer {
  const p = Buffer.alloc(BS);
  p.writeUInt32LE(Number(lsn >> 32n), 0);
  p.writeUInt32LE(Number(lsn & 0xffff_ffffn), 4);
  p.writeUInt16LE(24, 12); // pd_lower
  p.writeUInt16LE(BS, 14); // pd_upper
  p.writeUInt16LE(BS, 16); // pd_special
  p.writeUInt16LE(BS | 4, 18); // pd_pagesize_version
  p.writeUInt32LE(block, 100);
  p.writeUInt32LE(0xc0ffee, 104);
  p.writeUInt16LE(pageChecksum(new Uint32Array(p.buffer, p.byteOffset, BS / 4), block), 8);
  return p;
}

/** A file of FILE_BLOCKS pages; `damaged` blocks fail their checksum (one byte changed after it was computed). */
async function relationFile(dir: string, name: string, damaged: Map<number, bigint> = new Map()): Promise<{ path: string; bytes: Buffer }> {
  const pages = Array.from({ length: FILE_BLOCKS }, (_, b) => {
    const p = page(b, damaged.get(b) ?? 0x4_0000_0000n + BigInt(b));
    if (damaged.has(b)) p[200] = 0x5a;
    return p;
  });
  const bytes = Buffer.concat(pages);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, bytes };
}

const counters = (): PageCheckCounters => ({ pagesRead: 0, pagesReread: 0, pagesTornAccepted: 0 });
const options = (): PageCheckOptions => ({ blockSize: BS, checksumsEnabled: true, startLsn: START_LSN, verify: true, firstBlock: 0 });

/**
 * How the reads go: `cached` takes every synchronous read as quick (all synchronous), `disk` every
 * one as slow (asynchronous, several in flight, after the first SLOW_SYNC_READS_TO_SWITCH).
 */
type ReadPath = 'cached' | 'disk';
const slowReadBound = (path: ReadPath) => (path === 'cached' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY);

/**
 * How the runs are taken: `sync` copies each as it is handed on and returns nothing; `async`
 * returns a promise, and copies the run only after a turn of the event loop, so that a reader
 * reusing a run's slot before that promise resolves hands on wrong pages.
 */
type Consumer = 'sync' | 'async';

/** Reads `blocks` and returns each run as handed on, copied (the views are reused). */
async function readAll(path: string, blocks: readonly number[], bufferBytes: number, c = counters(), via: ReadPath = 'disk', consumer: Consumer = 'sync'): Promise<{ start: number; pages: Buffer }[]> {
  const runs: { start: number; pages: Buffer }[] = [];
  await readSelectedPages(path, 'base/5/16384', blocks, Buffer.alloc(bufferBytes), options(), c, (start, pages) => {
    if (consumer === 'sync') {
      runs.push({ start, pages: Buffer.from(pages) });
      return undefined;
    }
    return new Promise<void>((resolve) => setImmediate(() => {
      runs.push({ start, pages: Buffer.from(pages) });
      resolve();
    }));
  }, slowReadBound(via));
  return runs;
}

/** Single blocks, pairs, a run longer than any slot, and blocks past the end of the file. */
const LISTED = [
  ...Array.from({ length: 40 }, (_, i) => i * 7),
  281, 282, 290, 291, 292,
  ...Array.from({ length: 150 }, (_, i) => 300 + i),
  451, 460, 599, 600, 601, 700,
];

const openDescriptors = () => readdirSync('/proc/self/fd').length;

describe('readSelectedPages', () => {
  let dir: string;
  let file: { path: string; bytes: Buffer };

  beforeAll(async () => {
    dir = await makeTempDir('selected-pages');
    file = await relationFile(dir, '16384');
    // Large enough to be read asynchronously, where reads overlap.
    expect(file.bytes.length).toBeGreaterThan(SMALL_FILE_BYTES);
  });

  const ways = (['disk', 'cached'] as const).flatMap((via) => (['sync', 'async'] as const).map((consumer) => [via, consumer] as const));
  for (const [bufferBytes, via, consumer] of [BS, 3 * BS, 64 * 1024, 1024 * 1024, 1024 * 1024 + 5 * 1024].flatMap((n) => ways.map((w) => [n, ...w] as const))) {
    it(`returns every listed page in order, each its own, with a ${bufferBytes}-byte buffer, read as from ${via === 'disk' ? 'disk' : 'the page cache'}, taken ${consumer === 'sync' ? 'at once' : 'after a wait'}`, async () => {
      const c = counters();
      const runs = await readAll(file.path, LISTED, bufferBytes, c, via, consumer);
      const inFile = LISTED.filter((b) => b < FILE_BLOCKS);
      const got: number[] = [];
      for (const run of runs) {
        expect(run.pages.length % BS).toBe(0);
        expect(run.pages.length).toBeLessThanOrEqual(bufferBytes);
        for (let i = 0; i < run.pages.length / BS; i++) {
          const block = run.start + i;
          got.push(block);
          expect(run.pages.subarray(i * BS, (i + 1) * BS).equals(file.bytes.subarray(block * BS, (block + 1) * BS))).toBe(true);
        }
      }
      expect(got).toEqual(inFile);
      expect(c.pagesRead).toBe(inFile.length);
      expect(c.pagesReread).toBe(0);
      // More runs than slots, so that slots were reused.
      expect(runs.length).toBeGreaterThan(SELECTED_READS_IN_FLIGHT * 2);
    });
  }

  it.each(['disk', 'cached'] as const)('re-reads a failing page in its own slot: taken as torn at or past the start LSN, its neighbours unharmed (read as from %s)', async (via) => {
    const torn = await relationFile(dir, `torn-${via}`, new Map([[301, START_LSN + 10n], [7, START_LSN]]));
    const c = counters();
    const runs = await readAll(torn.path, LISTED, 64 * 1024, c, via);
    const all = Buffer.concat(runs.map((r) => r.pages));
    const expected = Buffer.concat(LISTED.filter((b) => b < FILE_BLOCKS).map((b) => torn.bytes.subarray(b * BS, (b + 1) * BS)));
    expect(all.equals(expected)).toBe(true);
    expect(c.pagesReread).toBe(2);
    expect(c.pagesTornAccepted).toBe(2);
    expect(c.latestTorn).toEqual({ path: 'base/5/16384', block: 301, lsn: START_LSN + 10n });
  });

  it('refuses a failing page older than the start LSN, naming its block, and closes the file', async () => {
    const bad = await relationFile(dir, 'bad', new Map([[320, START_LSN - 1n]]));
    const before = openDescriptors();
    await expect(readAll(bad.path, LISTED, 64 * 1024)).rejects.toMatchObject({ code: 'PAGE_CORRUPT', message: expect.stringContaining('block 320 (checksum mismatch)') });
    expect(openDescriptors()).toBe(before);
  });

  it('closes the file when the taker of its runs fails, with reads still in flight', async () => {
    const before = openDescriptors();
    const starts: number[] = [];
    const stop = new Error('the taker stops');
    const reading = readSelectedPages(file.path, 'base/5/16384', LISTED, Buffer.alloc(64 * 1024), options(), counters(), (start) => {
      starts.push(start);
      throw stop;
    }, slowReadBound('disk'));
    await expect(reading).rejects.toBe(stop);
    expect(starts).toEqual([0]);
    expect(openDescriptors()).toBe(before);
  });

  describe('choosing between the page cache and the disk', () => {
    afterEach(() => {
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
    });

    /** The DEBUG lines a read of LISTED writes, with PGKEEP_DEBUG set. */
    async function debugLinesOf(slowReadBaseNs: number): Promise<string[]> {
      vi.stubEnv('PGKEEP_DEBUG', '1');
      const lines: string[] = [];
      vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });
      const pages: number[] = [];
      await readSelectedPages(file.path, 'base/5/16384', LISTED, Buffer.alloc(64 * 1024), options(), counters(), (_start, run) => {
        pages.push(run.length / BS);
        return undefined;
      }, slowReadBaseNs);
      expect(pages.reduce((a, b) => a + b, 0)).toBe(LISTED.filter((b) => b < FILE_BLOCKS).length);
      return lines;
    }

    it(`goes asynchronous after ${SLOW_SYNC_READS_TO_SWITCH} slow reads, and says so under PGKEEP_DEBUG`, async () => {
      const lines = await debugLinesOf(Number.NEGATIVE_INFINITY);
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^DEBUG: base/5/16384: its listed pages come from disk, read asynchronously after ${SLOW_SYNC_READS_TO_SWITCH} of \\d+ reads\\n$`))]);
    });

    it('stays synchronous while every read is quick', async () => {
      expect(await debugLinesOf(Number.POSITIVE_INFINITY)).toEqual([]);
    });
  });

  it('returns nothing for a file that vanished', async () => {
    expect(await readAll(join(dir, 'dropped'), LISTED, 64 * 1024)).toEqual([]);
  });
});
