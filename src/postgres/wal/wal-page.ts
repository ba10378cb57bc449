/**
 * WAL page headers (XLogPageHeaderData / XLogLongPageHeaderData in access/xlog_internal.h),
 * the same layout in 13-18; only the magic (XLOG_PAGE_MAGIC) changes with each major.
 *
 *   short header, every page, 24 bytes (MAXALIGN of 20):
 *     xlp_magic u16 @0, xlp_info u16 @2, xlp_tli u32 @4, xlp_pageaddr u64 @8, xlp_rem_len u32 @16
 *   long header, first page of a segment, 40 bytes, adds:
 *     xlp_sysid u64 @24, xlp_seg_size u32 @32, xlp_xlog_blcksz u32 @36
 *
 * Integers are little-endian, as on every platform pgkeep supports.
 */
import { dataViewOf } from '../byte-views.js';

export const SHORT_PAGE_HEADER_SIZE = 24;
export const LONG_PAGE_HEADER_SIZE = 40;

/** The first record on the page continues one from the previous page. */
export const XLP_FIRST_IS_CONTRECORD = 0x0001;
/** The page carries the long header (first page of a segment). */
export const XLP_LONG_HEADER = 0x0002;
/** Backup blocks starting on this page are optional (set outside backups; 13-18). */
export const XLP_BKP_REMOVABLE = 0x0004;
/**
 * The record that should continue here was lost and overwritten (CreateOverwriteContrecordRecord,
 * back-patched to 10+ in 2021 with this value; 19 renumbers it to 0x4 after dropping BKP_REMOVABLE).
 */
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;
/** Every xlp_info bit 13-18 define; others mean the page is not a WAL page. */
export const XLP_ALL_FLAGS = 0x000f;

export interface WalPageHeader {
  magic: number;
  info: number;
  tli: number;
  pageAddr: bigint;
  remLen: number;
  /** 24 or 40. */
  headerSize: number;
  /** Long header only. */
  systemIdentifier: bigint | undefined;
  segSize: number | undefined;
  blockSize: number | undefined;
}

/** Reads the header at the start of `page` (at least 24 bytes; 40 when it is a long header). */
export function readPageHeader(page: Uint8Array): WalPageHeader {
  const v = dataViewOf(page);
  const o = page.byteOffset;
  const info = v.getUint16(o + 2, true);
  const long = (info & XLP_LONG_HEADER) !== 0 && page.length >= LONG_PAGE_HEADER_SIZE;
  return {
    magic: v.getUint16(o, true),
    info,
    tli: v.getUint32(o + 4, true),
    pageAddr: v.getBigUint64(o + 8, true),
    remLen: v.getUint32(o + 16, true),
    headerSize: (info & XLP_LONG_HEADER) !== 0 ? LONG_PAGE_HEADER_SIZE : SHORT_PAGE_HEADER_SIZE,
    systemIdentifier: long ? v.getBigUint64(o + 24, true) : undefined,
    segSize: long ? v.getUint32(o + 32, true) : undefined,
    blockSize: long ? v.getUint32(o + 36, true) : undefined,
  };
}

/**
 * Why `header` is not the valid header of the page at `expectedAddr`, or undefined when it is
 * (the checks of XLogReaderValidatePageHeader). Failing pages mark the end of valid WAL: a
 * zero-filled page, a recycled segment's stale page (wrong address), or another major's WAL.
 */
export function pageHeaderProblem(header: WalPageHeader, expectedAddr: bigint, magic: number, segSize: number): string | undefined {
  if (header.magic !== magic) return `invalid magic number ${hex4(header.magic)} (expected ${hex4(magic)})`;
  if ((header.info & ~XLP_ALL_FLAGS) !== 0) return `invalid info bits ${hex4(header.info)}`;
  if (header.pageAddr !== expectedAddr) return `unexpected page address ${header.pageAddr.toString(16).toUpperCase()}`;
  const firstOfSegment = expectedAddr % BigInt(segSize) === 0n;
  if (firstOfSegment !== ((header.info & XLP_LONG_HEADER) !== 0)) return `long header flag wrong for offset ${expectedAddr % BigInt(segSize)} in segment`;
  return undefined;
}

/**
 * The system identifier in the long header of a segment's first page, or undefined when the
 * bytes do not start with a long header (too short, no XLP_LONG_HEADER, zeros). archive-push
 * uses it to refuse a segment of another cluster; the magic is not checked, so that this works
 * for any major.
 */
export function readSegmentSystemIdentifier(firstPage: Uint8Array): bigint | undefined {
  if (firstPage.length < LONG_PAGE_HEADER_SIZE) return undefined;
  const header = readPageHeader(firstPage);
  if ((header.info & XLP_LONG_HEADER) === 0 || (header.info & ~XLP_ALL_FLAGS) !== 0) return undefined;
  return header.systemIdentifier;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}
