import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PAGE_CHECKSUM_IN_WASM, pageChecksum as pageChecksumAsUsed, pageChecksumInJs } from '../../src/postgres/checksum.js';
import { readPageChecksum, verifyPage } from '../../src/postgres/page.js';
import { FIXTURE_BLOCK_SIZE as BS, FIXTURE_PAGES } from './fixture-pages.js';

/** A copy of `page` at byte `at` of a fresh buffer of `total` bytes. */
function placed(page: Uint8Array, at: number, total = at + page.length + 5): Uint8Array {
  const buf = new Uint8Array(total);
  buf.set(page, at);
  return buf;
}

it('has six fixture pages, one of them past the first segment', () => {
  expect(FIXTURE_PAGES).toHaveLength(6);
  expect(FIXTURE_PAGES.some((p) => p.absBlockNo > 131072)).toBe(true);
});

it('runs the checksum in WebAssembly on this machine, so that the suite below checks both', () => {
  expect(PAGE_CHECKSUM_IN_WASM).toBe(true);
});

// The same checks for the WebAssembly module (what pageChecksum and verifyPage use here) and for
// the JavaScript version (where WebAssembly has no SIMD).
for (const [implementation, pageChecksum] of [['WebAssembly', pageChecksumAsUsed], ['JavaScript', pageChecksumInJs]] as const) describe(`pageChecksum in ${implementation} on real PostgreSQL 15 pages`, () => {

  for (const p of FIXTURE_PAGES) {
    describe(`${p.kind} (${p.relPath} block ${p.blockInSegment})`, () => {
      it('equals the stored pd_checksum and what pageinspect computed', () => {
        expect(readPageChecksum(p.bytes, 0)).toBe(p.checksum);
        expect(pageChecksum(p.bytes, 0, BS, p.absBlockNo)).toBe(p.checksum);
      });

      it('is valid as a whole page', () => {
        expect(verifyPage(p.bytes, 0, BS, p.absBlockNo, true)).toBe('valid');
      });

      it('fails with a wrong block number (a page moved to the wrong place)', () => {
        expect(pageChecksum(p.bytes, 0, BS, p.absBlockNo + 1)).not.toBe(p.checksum);
        expect(verifyPage(p.bytes, 0, BS, p.absBlockNo + 1, true)).toBe('bad-checksum');
        // The block within the segment is not the one that counts, for segments past the first.
        if (p.absBlockNo !== p.blockInSegment) {
          expect(verifyPage(p.bytes, 0, BS, p.blockInSegment, true)).toBe('bad-checksum');
        }
      });

      it('detects one flipped byte anywhere in the page', () => {
        for (const at of [0, 7, 10, 23, 100, 4097, BS - 1]) {
          const copy = Buffer.from(p.bytes);
          copy[at] = (copy[at] ?? 0) ^ 0x01;
          // Flipping a flag bit may break the header first; either way the page is refused.
          expect(['bad-checksum', 'bad-header']).toContain(verifyPage(copy, 0, BS, p.absBlockNo, true));
          expect(pageChecksum(copy, 0, BS, p.absBlockNo)).not.toBe(p.checksum);
        }
      });

      it('ignores the stored checksum bytes themselves', () => {
        const copy = Buffer.from(p.bytes);
        copy[8] = 0;
        copy[9] = 0;
        expect(pageChecksum(copy, 0, BS, p.absBlockNo)).toBe(p.checksum);
      });

      it('is the same at unaligned and aligned offsets inside a larger buffer', () => {
        for (const at of [1, 2, 3, 4, 8, BS + 3]) {
          const buf = placed(p.bytes, at);
          expect(pageChecksum(buf, at, BS, p.absBlockNo)).toBe(p.checksum);
          expect(verifyPage(buf, at, BS, p.absBlockNo, true)).toBe('valid');
        }
      });

      it('is the same through a subarray whose byteOffset is unaligned', () => {
        const backing = placed(p.bytes, 3);
        const view = backing.subarray(3, 3 + BS);
        expect(view.byteOffset).toBe(3);
        expect(pageChecksum(view, 0, BS, p.absBlockNo)).toBe(p.checksum);
      });
    });
  }

  it('handles several pages laid out in one read buffer', () => {
    const buf = Buffer.concat(FIXTURE_PAGES.map((p) => p.bytes));
    FIXTURE_PAGES.forEach((p, i) => {
      expect(pageChecksum(buf, i * BS, BS, p.absBlockNo)).toBe(p.checksum);
    });
  });

  it('never returns 0 and stays within uint16', () => {
    const page = Buffer.from(FIXTURE_PAGES[0]!.bytes);
    for (let blk = 0; blk < 2000; blk++) {
      const c = pageChecksum(page, 0, BS, blk);
      expect(c).toBeGreaterThanOrEqual(1);
      expect(c).toBeLessThanOrEqual(65535);
    }
  });

  it('accepts block numbers up to 2^32 - 2', () => {
    const p = FIXTURE_PAGES[0]!;
    const c = pageChecksum(p.bytes, 0, BS, 0xfffffffe);
    expect(Number.isInteger(c)).toBe(true);
    expect(c).not.toBe(pageChecksum(p.bytes, 0, BS, 0x7ffffffe));
  });

  it('refuses a page that runs past the buffer or an odd block size', () => {
    const p = FIXTURE_PAGES[0]!;
    expect(() => pageChecksum(p.bytes, 1, BS, 0)).toThrow(/runs past/);
    expect(() => pageChecksum(p.bytes, 0, 100, 0)).toThrow(/block size/);
  });
});

describe('the WebAssembly checksum against the JavaScript one', () => {
  it('agrees on random pages of every block size PostgreSQL builds with, at any block number', () => {
    for (const bs of [1024, 2048, 4096, 8192, 16384, 32768]) {
      // Two pages side by side, the second at an odd offset: the module copies whatever it is given.
      const buf = randomBytes(2 * bs + 1);
      for (let i = 0; i < 64; i++) {
        buf.set(randomBytes(2 * bs + 1));
        const blk = i < 4 ? [0, 0x7fffffff, 0x80000000, 0xfffffffe][i]! : buf.readUInt32LE(0);
        expect(pageChecksumAsUsed(buf, 0, bs, blk)).toBe(pageChecksumInJs(buf, 0, bs, blk));
        expect(pageChecksumAsUsed(buf, bs + 1, bs, blk)).toBe(pageChecksumInJs(buf, bs + 1, bs, blk));
      }
    }
  });

  it('leaves nothing of a larger page behind for a smaller one', () => {
    const big = randomBytes(32768);
    const small = randomBytes(8192);
    const before = pageChecksumAsUsed(small, 0, 8192, 7);
    pageChecksumAsUsed(big, 0, 32768, 7);
    expect(pageChecksumAsUsed(small, 0, 8192, 7)).toBe(before);
    expect(before).toBe(pageChecksumInJs(small, 0, 8192, 7));
  });
});
