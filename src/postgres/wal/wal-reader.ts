/**
 * Reads the WAL records of a range, segment after segment, page after page.
 *
 * Design: one page buffer and one record buffer, both reused. A record that fits on its page is
 * decoded in place; one that spans pages (even its header may be split) is assembled in the
 * record buffer from the continuation data of the following pages, whose headers carry
 * XLP_FIRST_IS_CONTRECORD and xlp_rem_len (the bytes still to come). Records start 8-byte
 * aligned (MAXALIGN). After XLOG_SWITCH the rest of the segment is padding.
 *
 * Where valid WAL ends (a zero-filled page, a recycled segment's stale page with the wrong
 * xlp_pageaddr, a record whose prev-link does not match, a segment cut short) reading stops
 * cleanly and reports where: the last segment of an archive is often partial. A CRC mismatch or
 * an undecodable record is corruption and throws WAL_CORRUPT; a segment that is needed but not
 * there throws WAL_MISSING naming the file. This follows XLogDecodeNextRecord and
 * XLogReaderValidatePageHeader in xlogreader.c.
 */
import { PgkeepError } from '../../errors.js';
import { formatLsn, walFileName } from '../../core/lsn.js';
import { dataViewOf } from '../byte-views.js';
import { traitsForMajor, type WalTraits } from '../server-versions.js';
import { RecordBuffer } from './record-buffer.js';
import { SegmentPages } from './segment-pages.js';
import {
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
  pageHeaderProblem,
  readPageHeader,
} from './wal-page.js';
import { RECORD_HEADER_SIZE, decodeRecord, isValidRmgrId, readRecordHeader, verifyRecordCrc, type WalRecord } from './wal-record.js';

export interface ReadWalOptions {
  /** Content of one segment of timeline `tli`, in chunks of any size; undefined when it is missing. */
  openSegment(segNo: bigint): Promise<AsyncIterable<Uint8Array> | undefined>;
  tli: number;
  /** The segment's file name in messages, when the segments come from more than one timeline (default: on `tli`). */
  segmentName?: (segNo: bigint) => string;
  segSize: number;
  /** XLOG_BLCKSZ, 8192 unless PostgreSQL was built otherwise. */
  blockSize: number;
  major: number;
  /** A record boundary (a checkpoint's redo pointer), or a page start. */
  startLsn: bigint;
  /** Records starting at or after this are not read. */
  endLsn: bigint;
  /** When given, a segment of another cluster throws WAL_CORRUPT. */
  systemIdentifier?: bigint;
  /** Called once with where and why reading stopped (also the generator's return value). */
  onEnd?: (end: WalReadEnd) => void;
}

export interface WalReadEnd {
  /** 'end-lsn': endLsn reached; 'end-of-wal': no valid WAL after `lsn`. */
  reason: 'end-lsn' | 'end-of-wal';
  /** Where the next record would have started. */
  lsn: bigint;
  detail: string;
}

/** Largest record PostgreSQL writes (XLogRecordMaxSize is 1020 MB); beyond is garbage. */
const MAX_RECORD_LENGTH = 1024 * 1024 * 1024;
const RM_XLOG_ID = 0;
const XLOG_SWITCH = 0x40;

export async function* readWalRecords(opts: ReadWalOptions): AsyncGenerator<WalRecord, WalReadEnd, undefined> {
  const traits = traitsForMajor(opts.major);
  checkGeometry(opts.segSize, opts.blockSize);
  const segSize = BigInt(opts.segSize);
  const blockSize = opts.blockSize;
  const pagesPerSegment = opts.segSize / blockSize;
  const page = new Uint8Array(blockSize);
  const pageView = dataViewOf(page);
  const assembled = new RecordBuffer();

  // Position of the next record (or of the page start where one is looked for).
  let pos = opts.startLsn;
  let prevLsn: bigint | undefined;
  let recordsRead = 0;
  // A record spanning pages, while it is gathered.
  let gathering = false;
  let recLsn = 0n;
  let recTotal = 0;
  let headerChecked = false;

  const finish = (reason: WalReadEnd['reason'], lsn: bigint, detail: string): WalReadEnd => {
    const end = { reason, lsn, detail };
    opts.onEnd?.(end);
    return end;
  };

  for (let segNo = pos / segSize; ; segNo++) {
    if (!gathering && pos >= opts.endLsn) return finish('end-lsn', pos, 'end LSN reached');
    const fileName = opts.segmentName?.(segNo) ?? walFileName(opts.tli, segNo, opts.segSize);
    const source = await opts.openSegment(segNo);
    if (source === undefined) {
      throw new PgkeepError(
        'WAL_MISSING',
        `WAL segment ${fileName} is missing (needed to read WAL from ${formatLsn(opts.startLsn)} to ${formatLsn(opts.endLsn)})`,
        'check that archive_command succeeds for every segment, then list the archive',
      );
    }
    const pages = new SegmentPages(source);
    try {
      const segStart = segNo * segSize;
      for (let pageNo = 0; pageNo < pagesPerSegment; pageNo++) {
        const pageAddr = segStart + BigInt(pageNo * blockSize);
        const pageEnd = pageAddr + BigInt(blockSize);
        const got = await pages.readPage(page);
        if (got < blockSize) {
          return finish('end-of-wal', gathering ? recLsn : pos, `segment ${fileName} ends at offset ${pageNo * blockSize + got}`);
        }
        const header = readPageHeader(page);
        if (pageNo === 0) checkSegmentIdentity(header, fileName, opts, traits);
        if (!gathering && pageEnd <= pos) {
          // Before the start: on to its page (a seekable source does not read the pages between).
          const startPage = Number((pos - segStart) / BigInt(blockSize));
          if (startPage > pageNo + 1) {
            const reached = await pages.skipTo(startPage * blockSize, page);
            if (reached < startPage * blockSize) return finish('end-of-wal', pos, `segment ${fileName} ends at offset ${reached}`);
            pageNo = startPage - 1;
          }
          continue;
        }

        const problem = pageHeaderProblem(header, pageAddr, traits.walPageMagic, opts.segSize);
        if (problem !== undefined) {
          if (recordsRead === 0 && !gathering && pageAddr <= opts.startLsn) {
            throw corruptAt(fileName, pageAddr, `no valid WAL at the start LSN ${formatLsn(opts.startLsn)}: ${problem}`);
          }
          return finish('end-of-wal', gathering ? recLsn : pos, `${fileName} at ${formatLsn(pageAddr)}: ${problem}`);
        }
        let off = header.headerSize;

        if (gathering) {
          if ((header.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) !== 0) {
            // The record being gathered was lost at a crash and overwritten: new records start here.
            gathering = false;
            pos = pageAddr + BigInt(off);
          } else if ((header.info & XLP_FIRST_IS_CONTRECORD) === 0 || header.remLen === 0 || header.remLen !== recTotal - assembled.length) {
            return finish('end-of-wal', recLsn, `record at ${formatLsn(recLsn)} is not continued at ${formatLsn(pageAddr)}`);
          } else {
            const n = Math.min(header.remLen, blockSize - off);
            assembled.append(page.subarray(off, off + n));
            off += n;
            if (!headerChecked && assembled.length >= RECORD_HEADER_SIZE) {
              const problem = recordHeaderProblem(assembled.view(), recLsn, prevLsn, traits);
              if (problem !== undefined) return finish('end-of-wal', recLsn, problem);
              headerChecked = true;
            }
            if (assembled.length < recTotal) continue; // more on the next page
            gathering = false;
            const record = assembled.view();
            verifyRecordCrc(record, recLsn);
            const endLsn = recordEnd(pageAddr + BigInt(off), record, segSize);
            yield decodeRecord(record, recLsn, endLsn, traits, blockSize);
            recordsRead++;
            prevLsn = recLsn;
            pos = endLsn;
          }
        } else if (pos === pageAddr) {
          if ((header.info & XLP_FIRST_IS_CONTRECORD) !== 0) {
            if (recordsRead > 0) return finish('end-of-wal', pos, `unexpected continuation data at ${formatLsn(pageAddr)}`);
            // Starting on a page that begins with the tail of an earlier record: skip it.
            const rest = align8(header.remLen);
            pos = rest >= blockSize - off ? pageEnd : pageAddr + BigInt(off + rest);
          } else {
            pos = pageAddr + BigInt(off);
          }
        } else if (pos < pageAddr + BigInt(off)) {
          throw corruptAt(fileName, pos, `start LSN ${formatLsn(pos)} lies inside a page header`);
        }

        // Records starting on this page.
        while (!gathering && pos < pageEnd && pos >= pageAddr) {
          if (pos >= opts.endLsn) return finish('end-lsn', pos, 'end LSN reached');
          off = Number(pos - pageAddr);
          const totalLength = pageView.getUint32(page.byteOffset + off, true);
          if (totalLength === 0) return finish('end-of-wal', pos, `no record at ${formatLsn(pos)} (zeros)`);
          if (totalLength < RECORD_HEADER_SIZE || totalLength > MAX_RECORD_LENGTH) {
            return finish('end-of-wal', pos, `invalid record length ${totalLength} at ${formatLsn(pos)}`);
          }
          const available = blockSize - off;
          if (totalLength > available) {
            gathering = true;
            recLsn = pos;
            recTotal = totalLength;
            assembled.reset();
            assembled.append(page.subarray(off));
            headerChecked = false;
            if (available >= RECORD_HEADER_SIZE) {
              const problem = recordHeaderProblem(assembled.view(), recLsn, prevLsn, traits);
              if (problem !== undefined) return finish('end-of-wal', recLsn, problem);
              headerChecked = true;
            }
            break;
          }
          const record = page.subarray(off, off + totalLength);
          const problem = recordHeaderProblem(record, pos, prevLsn, traits);
          if (problem !== undefined) return finish('end-of-wal', pos, problem);
          verifyRecordCrc(record, pos);
          const endLsn = recordEnd(pos + BigInt(totalLength), record, segSize);
          const lsn = pos;
          yield decodeRecord(record, lsn, endLsn, traits, blockSize);
          recordsRead++;
          prevLsn = lsn;
          pos = endLsn;
        }
        if (!gathering && pos >= segStart + segSize) break; // XLOG_SWITCH, or the segment is done
      }
    } finally {
      await pages.close();
    }
    if (!gathering && pos < (segNo + 1n) * segSize) pos = (segNo + 1n) * segSize;
  }
}

/**
 * Where the record after this one starts: MAXALIGN past its last byte, or for XLOG_SWITCH the
 * start of the next segment (the switch record "extends" to the segment's end).
 */
function recordEnd(lastByteEnd: bigint, record: Uint8Array, segSize: bigint): bigint {
  const aligned = (lastByteEnd + 7n) & ~7n;
  if (record[17] === RM_XLOG_ID && (record[16]! & 0xf0) === XLOG_SWITCH) {
    return ((aligned + segSize - 1n) / segSize) * segSize;
  }
  return aligned;
}

/**
 * ValidXLogRecordHeader: a plausible length, a known resource manager, and a prev-link equal to
 * the previous record's position (or, for the first record read, below its own position). A
 * failure marks the end of valid WAL, as a stale record of a recycled segment would.
 */
function recordHeaderProblem(record: Uint8Array, lsn: bigint, prevLsn: bigint | undefined, traits: WalTraits): string | undefined {
  const h = readRecordHeader(record);
  if (h.totalLength < RECORD_HEADER_SIZE) return `invalid record length ${h.totalLength} at ${formatLsn(lsn)}`;
  if (!isValidRmgrId(h.rmid, traits)) return `invalid resource manager id ${h.rmid} at ${formatLsn(lsn)}`;
  if (prevLsn === undefined ? h.prevLsn >= lsn : h.prevLsn !== prevLsn) {
    return `record with incorrect prev-link ${formatLsn(h.prevLsn)} at ${formatLsn(lsn)}`;
  }
  return undefined;
}

function checkSegmentIdentity(header: ReturnType<typeof readPageHeader>, fileName: string, opts: ReadWalOptions, traits: WalTraits): void {
  // Only a page that is a long header of this major says something about the segment; a zeroed
  // or stale first page is left to the page checks (end of WAL).
  if (header.magic !== traits.walPageMagic || header.systemIdentifier === undefined) return;
  if (opts.systemIdentifier !== undefined && header.systemIdentifier !== opts.systemIdentifier) {
    throw new PgkeepError(
      'WAL_CORRUPT',
      `WAL segment ${fileName} belongs to another cluster (system identifier ${header.systemIdentifier}, expected ${opts.systemIdentifier})`,
      'the archive mixes WAL of two clusters: give each cluster its own instance',
    );
  }
  if (header.segSize !== opts.segSize || header.blockSize !== opts.blockSize) {
    throw new PgkeepError(
      'WAL_CORRUPT',
      `WAL segment ${fileName} has segment size ${header.segSize} and page size ${header.blockSize}, expected ${opts.segSize} and ${opts.blockSize}`,
      'the WAL belongs to a cluster initialised with other settings',
    );
  }
}

function checkGeometry(segSize: number, blockSize: number): void {
  const pow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(segSize) || segSize < 1024 * 1024 || segSize > 1024 * 1024 * 1024 || !pow2(blockSize) || blockSize > segSize || blockSize < 1024) {
    throw new PgkeepError('INTERNAL', `invalid WAL geometry: segment size ${segSize}, page size ${blockSize}`);
  }
}

function corruptAt(fileName: string, lsn: bigint, detail: string): PgkeepError {
  return new PgkeepError('WAL_CORRUPT', `WAL segment ${fileName}, ${formatLsn(lsn)}: ${detail}`, 'check that the start LSN is a record boundary of this cluster\'s WAL');
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
