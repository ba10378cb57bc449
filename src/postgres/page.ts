/**
 * The standard page header (PageHeaderData in src/include/storage/bufpage.h) and the checks
 * PostgreSQL applies when it reads a page from disk (PageIsVerifiedExtended in bufpage.c).
 *
 * Layout, little-endian: pd_lsn (uint32 high, uint32 low) at 0, pd_checksum u16 at 8, pd_flags
 * u16 at 10, pd_lower u16 at 12, pd_upper u16 at 14, pd_special u16 at 16, pd_pagesize_version
 * u16 at 18, pd_prune_xid u32 at 20. Every function takes the page's byte offset inside `buf`, so
 * callers can verify pages in place in a large read buffer; none allocates.
 */
import type { Lsn } from '../core/lsn.js';
import { dataViewOf } from './byte-views.js';
import { pageChecksum } from './checksum.js';
import { PgkeepError } from '../errors.js';

export const PAGE_HEADER_SIZE = 24;

/** PD_VALID_FLAG_BITS: PD_HAS_FREE_LINES | PD_PAGE_FULL | PD_ALL_VISIBLE. */
export const PAGE_VALID_FLAG_BITS = 0x0007;

/** pd_upper == 0 marks a page that was never initialised (PageIsNew). */
const PD_UPPER = 14;

/**
 * 'valid': header sane and, with checksums on, checksum right.
 * 'zero': every byte 0; PostgreSQL accepts these (a relation extended just before a crash).
 * 'new': pd_upper == 0 but not all zero. PostgreSQL never checksums such a page, and
 *   PageIsVerified rejects it; pg_checksums and pg_basebackup skip it. The caller decides.
 * 'bad-header': flags or pointers that PageIsVerified would refuse.
 * 'bad-checksum': header sane, checksum wrong (possibly a torn read: re-read before judging).
 */
export type PageVerdict = 'valid' | 'zero' | 'new' | 'bad-header' | 'bad-checksum';

/**
 * Whether a page with this verdict is taken as it is, by a backup and by validation: valid, all
 * zeros, or new (PostgreSQL never checksums a page with pd_upper 0, and pg_checksums and
 * pg_basebackup skip it too). The other two are damage, unless the page was written while the
 * backup read it (a torn read, which replay rewrites).
 */
export function passesPageCheck(v: PageVerdict): boolean {
  return v === 'valid' || v === 'zero' || v === 'new';
}

/** pd_lsn of the page at `buf[offset]`: the LSN of the last WAL record that changed it. */
export function readPageLsn(buf: Uint8Array, offset: number): Lsn {
  assertInside(buf, offset, 8);
  const view = dataViewOf(buf);
  const pos = buf.byteOffset + offset;
  return (BigInt(view.getUint32(pos, true)) << 32n) | BigInt(view.getUint32(pos + 4, true));
}

/** pd_checksum as stored (0 on clusters without data checksums). */
export function readPageChecksum(buf: Uint8Array, offset: number): number {
  assertInside(buf, offset, 10);
  return dataViewOf(buf).getUint16(buf.byteOffset + offset + 8, true);
}

/** True when `length` bytes from `buf[offset]` are all zero. */
export function isAllZero(buf: Uint8Array, offset: number, length: number): boolean {
  assertInside(buf, offset, length);
  const view = dataViewOf(buf);
  let pos = buf.byteOffset + offset;
  const end = pos + length;
  // Eight bytes at a time; unaligned DataView reads are fine and cost the same.
  for (const end8 = end - 7; pos < end8; pos += 8) {
    if (view.getUint32(pos, true) !== 0 || view.getUint32(pos + 4, true) !== 0) return false;
  }
  for (; pos < end; pos++) {
    if (view.getUint8(pos) !== 0) return false;
  }
  return true;
}

/**
 * Judge the page at `buf[offset]` as PostgreSQL's PageIsVerifiedExtended does, with the
 * reasons kept apart. Like PostgreSQL, this checks flags, pd_lower <= pd_upper <= pd_special <=
 * blockSize and pd_special MAXALIGNed (8); it does not check pd_lower >= 24 or
 * pd_pagesize_version, because PostgreSQL does not either: a backup must not reject pages the
 * server itself reads without complaint.
 */
export function verifyPage(
  buf: Uint8Array,
  offset: number,
  blockSize: number,
  absBlockNo: number,
  checksumsEnabled: boolean,
): PageVerdict {
  assertInside(buf, offset, blockSize);
  const view = dataViewOf(buf);
  const pos = buf.byteOffset + offset;
  const upper = view.getUint16(pos + PD_UPPER, true);
  if (upper === 0) return isAllZero(buf, offset, blockSize) ? 'zero' : 'new';

  const flags = view.getUint16(pos + 10, true);
  const lower = view.getUint16(pos + 12, true);
  const special = view.getUint16(pos + 16, true);
  if ((flags & ~PAGE_VALID_FLAG_BITS) !== 0 || lower > upper || upper > special || special > blockSize || (special & 7) !== 0) {
    return 'bad-header';
  }
  if (checksumsEnabled && pageChecksum(buf, offset, blockSize, absBlockNo) !== view.getUint16(pos + 8, true)) {
    return 'bad-checksum';
  }
  return 'valid';
}

/**
 * The views cover the whole ArrayBuffer, so a read past `buf` would silently see a neighbour's
 * bytes (Node pools small Buffers): refuse instead.
 */
function assertInside(buf: Uint8Array, offset: number, length: number): void {
  if (offset < 0 || length < 0 || offset + length > buf.length) {
    throw new PgkeepError('INTERNAL', `${length} bytes at offset ${offset} run past a buffer of ${buf.length} bytes`);
  }
}
