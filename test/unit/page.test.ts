import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../src/core/lsn.js';
import { PAGE_HEADER_SIZE, isAllZero, passesPageCheck, readPageChecksum, readPageLsn, verifyPage, type PageVerdict } from '../../src/postgres/page.js';
import { FIXTURE_BLOCK_SIZE as BS, FIXTURE_PAGES } from './fixture-pages.js';

const heap = FIXTURE_PAGES.find((p) => p.file === 'user-table-heap-blk3.page')!;

/** A copy of the heap fixture with little-endian uint16 `value` at `at`. */
function withU16(at: number, value: number, base: Uint8Array = heap.bytes): Buffer {
  const copy = Buffer.from(base);
  copy.writeUInt16LE(value, at);
  return copy;
}

describe('readPageLsn / readPageChecksum', () => {
  for (const p of FIXTURE_PAGES) {
    it(`reads what pageinspect's page_header() reported for ${p.file}`, () => {
      expect(formatLsn(readPageLsn(p.bytes, 0))).toBe(p.lsn);
      expect(readPageChecksum(p.bytes, 0)).toBe(p.checksum);
    });
  }

  it('combines the high and low halves as high * 2^32 + low, beyond 2^53', () => {
    const buf = new Uint8Array(16);
    const view = new DataView(buf.buffer);
    view.setUint32(3, 0xfedcba98, true);
    view.setUint32(7, 0x76543210, true);
    expect(readPageLsn(buf, 3)).toBe(0xfedcba9876543210n);
    expect(readPageLsn(buf, 3)).toBe(parseLsn('FEDCBA98/76543210'));
  });

  it('reads at an offset inside a subarray', () => {
    const backing = new Uint8Array(BS + 5);
    backing.set(heap.bytes, 5);
    const sub = backing.subarray(1);
    expect(formatLsn(readPageLsn(sub, 4))).toBe(heap.lsn);
    expect(readPageChecksum(sub, 4)).toBe(heap.checksum);
  });

  it('refuses to read past the end of the array, even when the ArrayBuffer goes on', () => {
    const backing = new Uint8Array(64);
    const sub = backing.subarray(0, 20);
    expect(() => readPageLsn(sub, 16)).toThrow(/run past/);
    expect(() => verifyPage(sub, 0, BS, 0, true)).toThrow(/run past/);
  });
});

describe('isAllZero', () => {
  it('is true for zeros and false for one set bit anywhere, at any alignment', () => {
    const buf = new Uint8Array(BS + 16);
    for (const offset of [0, 1, 3, 8]) {
      expect(isAllZero(buf, offset, BS)).toBe(true);
      for (const at of [0, 1, 7, 8, 4095, BS - 9, BS - 2, BS - 1]) {
        buf[offset + at] = 0x80;
        expect(isAllZero(buf, offset, BS)).toBe(false);
        buf[offset + at] = 0;
      }
    }
  });

  it('only looks at the range it is given', () => {
    const buf = new Uint8Array(40).fill(1);
    buf.fill(0, 5, 30);
    expect(isAllZero(buf, 5, 25)).toBe(true);
    expect(isAllZero(buf, 4, 25)).toBe(false);
    expect(isAllZero(buf, 5, 26)).toBe(false);
    expect(isAllZero(buf, 5, 0)).toBe(true);
  });
});

describe('verifyPage', () => {
  it('PAGE_HEADER_SIZE is 24', () => {
    expect(PAGE_HEADER_SIZE).toBe(24);
  });

  it("says 'zero' for an all-zero page, with or without checksums", () => {
    const zero = new Uint8Array(BS);
    expect(verifyPage(zero, 0, BS, 12345, true)).toBe('zero');
    expect(verifyPage(zero, 0, BS, 0, false)).toBe('zero');
  });

  it("says 'new' when pd_upper is 0 but the page is not all zero", () => {
    const page = new Uint8Array(BS);
    page[BS - 1] = 1;
    expect(verifyPage(page, 0, BS, 0, true)).toBe('new');
    // A real page whose pd_upper was zeroed: no checksum is computed for it.
    expect(verifyPage(withU16(14, 0), 0, BS, heap.absBlockNo, true)).toBe('new');
  });

  it("says 'valid' for real pages without checksum verification, whatever the block number", () => {
    for (const p of FIXTURE_PAGES) {
      expect(verifyPage(p.bytes, 0, BS, p.absBlockNo + 7, false)).toBe('valid');
    }
  });

  const badHeaders: [string, number, number][] = [
    ['a flag outside PD_VALID_FLAG_BITS', 10, 0x0008],
    ['pd_lower above pd_upper', 12, heap.upper + 8],
    ['pd_upper above pd_special', 16, heap.upper - 8],
    ['pd_special above the block size', 16, 8192 + 8],
    ['pd_special not 8-aligned', 16, 8192 - 4],
  ];
  for (const [what, at, value] of badHeaders) {
    it(`says 'bad-header' for ${what}, checksums on or off`, () => {
      const page = withU16(at, value);
      expect(verifyPage(page, 0, BS, heap.absBlockNo, true)).toBe('bad-header');
      expect(verifyPage(page, 0, BS, heap.absBlockNo, false)).toBe('bad-header');
    });
  }

  it('accepts what PostgreSQL accepts: pd_lower below 24 and any pd_pagesize_version', () => {
    // PageIsVerifiedExtended (bufpage.c) checks neither; a backup must not be stricter than the
    // server. With checksums off only the header counts.
    expect(verifyPage(withU16(12, 0), 0, BS, heap.absBlockNo, false)).toBe('valid');
    expect(verifyPage(withU16(18, 0x1004), 0, BS, heap.absBlockNo, false)).toBe('valid');
  });

  it('accepts all three valid flag bits and pd_lower == pd_upper == pd_special', () => {
    const page = withU16(10, 0x0007);
    page.writeUInt16LE(8192, 12);
    page.writeUInt16LE(8192, 14);
    page.writeUInt16LE(8192, 16);
    expect(verifyPage(page, 0, BS, heap.absBlockNo, false)).toBe('valid');
  });

  it("says 'bad-checksum' for a sane header with a wrong checksum, only when checksums are on", () => {
    const page = withU16(8, heap.checksum ^ 0x0100);
    expect(verifyPage(page, 0, BS, heap.absBlockNo, true)).toBe('bad-checksum');
    expect(verifyPage(page, 0, BS, heap.absBlockNo, false)).toBe('valid');
  });

  it('checks a page in place inside a larger buffer', () => {
    const buf = Buffer.alloc(3 * BS + 3);
    heap.bytes.copy(buf, BS + 3);
    expect(verifyPage(buf, BS + 3, BS, heap.absBlockNo, true)).toBe('valid');
    expect(verifyPage(buf, 0, BS, 0, true)).toBe('zero');
  });
});

describe('passesPageCheck', () => {
  it('takes valid, all-zero and new pages as they are, and no damaged one', () => {
    const verdicts: PageVerdict[] = ['valid', 'zero', 'new', 'bad-header', 'bad-checksum'];
    expect(verdicts.filter(passesPageCheck)).toEqual(['valid', 'zero', 'new']);
  });
});
