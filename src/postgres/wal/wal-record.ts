/**
 * One WAL record: its fixed header (XLogRecord, access/xlogrecord.h) and the decoding of its
 * block references and main data (DecodeXLogRecord in access/transam/xlogreader.c).
 *
 *   XLogRecord, 24 bytes: xl_tot_len u32 @0, xl_xid u32 @4, xl_prev u64 @8, xl_info u8 @16,
 *   xl_rmid u8 @17, 2 pad, xl_crc u32 @20
 *
 * After the header come fragment headers, each opening with an id byte: block references
 * (id 0-32), 253 replication origin (u16), 252 top-level xid (u32), and last the main-data
 * header, 255 (u8 length) or 254 (u32 length). Then the fragments' payloads in the same order:
 * each block's image then its data, then the main data.
 *
 * A block reference header: id u8, fork_flags u8, data_length u16; then, with an image,
 * length u16, hole_offset u16, bimg_info u8 (+ hole_length u16 when compressed with a hole);
 * then, unless BKPBLOCK_SAME_REL, a RelFileLocator (spcOid, dbOid, relNumber: 3 x u32, the
 * same 12 bytes as the RelFileNode of 13-15); then the BlockNumber u32.
 *
 * Decoding copies nothing: mainData is a view into the caller's buffer.
 */
import { PgkeepError } from '../../errors.js';
import { formatLsn } from '../../core/lsn.js';
import { dataViewOf } from '../byte-views.js';
import type { WalTraits } from '../server-versions.js';
import { CRC32C_INIT, crc32cFinish, crc32cUpdate } from './crc32c.js';

export const RECORD_HEADER_SIZE = 24;
/** Offset of xl_crc: the CRC covers the header up to here. */
const CRC_OFFSET = 20;

/** xl_info bits owned by the WAL machinery; the high four belong to the resource manager. */
export const XLR_INFO_MASK = 0x0f;
/** The record changes relation files in ways its block references do not describe. */
export const XLR_SPECIAL_REL_UPDATE = 0x01;

const XLR_MAX_BLOCK_ID = 32;
const XLR_BLOCK_ID_DATA_SHORT = 255;
const XLR_BLOCK_ID_DATA_LONG = 254;
const XLR_BLOCK_ID_ORIGIN = 253;
const XLR_BLOCK_ID_TOPLEVEL_XID = 252;

const BKPBLOCK_FORK_MASK = 0x0f;
const BKPBLOCK_HAS_IMAGE = 0x10;
const BKPBLOCK_HAS_DATA = 0x20;
const BKPBLOCK_WILL_INIT = 0x40;
const BKPBLOCK_SAME_REL = 0x80;
const BKPIMAGE_HAS_HOLE = 0x01;

/** Highest built-in resource manager id in 13-18 (RM_LOGICALMSG_ID); custom ids are 128-255. */
const MAX_BUILTIN_RMGR_ID = 21;

export interface BlockRef {
  /** Block reference id within the record (0-32). */
  id: number;
  spcOid: number;
  dbOid: number;
  relNumber: number;
  /** 0 main, 1 fsm, 2 visibility map, 3 init. */
  fork: number;
  block: number;
  hasImage: boolean;
  /** The image is restored at replay (not only kept for wal_consistency_checking). */
  applyImage: boolean;
  /** Replay re-initialises the page: its old content does not matter. */
  willInit: boolean;
  hasData: boolean;
}

export interface WalRecord {
  lsn: bigint;
  /** Where the next record starts (for XLOG_SWITCH: the next segment), as pg_walinspect's end_lsn. */
  endLsn: bigint;
  prevLsn: bigint;
  xid: number;
  rmid: number;
  info: number;
  totalLength: number;
  /** xid of the top-level transaction when a subtransaction wrote the record (id 252), else 0. */
  toplevelXid: number;
  blocks: BlockRef[];
  /** A view into the reader's buffer: valid until the next record is read. */
  mainData: Uint8Array;
}

export interface RecordHeader {
  totalLength: number;
  xid: number;
  prevLsn: bigint;
  info: number;
  rmid: number;
  crc: number;
}

/** Reads the 24-byte header at the start of `record`. */
export function readRecordHeader(record: Uint8Array): RecordHeader {
  const v = dataViewOf(record);
  const o = record.byteOffset;
  return {
    totalLength: v.getUint32(o, true),
    xid: v.getUint32(o + 4, true),
    prevLsn: v.getBigUint64(o + 8, true),
    info: v.getUint8(o + 16),
    rmid: v.getUint8(o + 17),
    crc: v.getUint32(o + 20, true),
  };
}

/** True when `rmid` names a resource manager that can exist in this major (RmgrIdIsValid). */
export function isValidRmgrId(rmid: number, traits: WalTraits): boolean {
  return rmid <= MAX_BUILTIN_RMGR_ID || (traits.walCustomRmgrs && rmid >= 128);
}

/**
 * The CRC the record should carry: over the payload after the header, then over the header up
 * to xl_crc (ValidXLogRecord). `record` holds exactly xl_tot_len bytes.
 */
export function computeRecordCrc(record: Uint8Array): number {
  let state = crc32cUpdate(CRC32C_INIT, record, RECORD_HEADER_SIZE, record.length);
  state = crc32cUpdate(state, record, 0, CRC_OFFSET);
  return crc32cFinish(state);
}

/** Throws WAL_CORRUPT unless the record's CRC matches its content. */
export function verifyRecordCrc(record: Uint8Array, lsn: bigint): void {
  const stored = readRecordHeader(record).crc;
  const computed = computeRecordCrc(record);
  if (stored !== computed) {
    throw corrupt(lsn, `incorrect checksum (stored ${hex8(stored)}, computed ${hex8(computed)})`);
  }
}

/**
 * Decodes a whole record (`record` is exactly xl_tot_len bytes, CRC already verified). Every
 * length is checked against the bytes present: corrupt input throws WAL_CORRUPT, never reads
 * out of bounds. `pageSize` is BLCKSZ, the size of the relation pages that images hold.
 */
export function decodeRecord(record: Uint8Array, lsn: bigint, endLsn: bigint, traits: WalTraits, pageSize = 8192): WalRecord {
  const header = readRecordHeader(record);
  if (header.totalLength !== record.length || header.totalLength < RECORD_HEADER_SIZE) {
    throw corrupt(lsn, `record length ${header.totalLength} does not match the ${record.length} bytes given`);
  }
  const v = dataViewOf(record);
  const base = record.byteOffset;
  const end = record.length;
  const compressedMask = traits.walImageCompressedMask;
  const applyBit = traits.walImageApply;

  let pos = RECORD_HEADER_SIZE;
  let payload = 0; // bytes of images, block data and main data announced by the headers
  let mainLength = 0;
  let toplevelXid = 0;
  let maxBlockId = -1;
  let spcOid = 0;
  let dbOid = 0;
  let relNumber = 0;
  let haveRel = false;
  const blocks: BlockRef[] = [];

  while (end - pos > payload) {
    need(pos, 1, end, lsn);
    const id = record[pos++]!;
    if (id === XLR_BLOCK_ID_DATA_SHORT) {
      need(pos, 1, end, lsn);
      mainLength = record[pos++]!;
      payload += mainLength;
      break; // by convention the main data header is the last one
    } else if (id === XLR_BLOCK_ID_DATA_LONG) {
      need(pos, 4, end, lsn);
      mainLength = v.getUint32(base + pos, true);
      pos += 4;
      payload += mainLength;
      break;
    } else if (id === XLR_BLOCK_ID_ORIGIN) {
      need(pos, 2, end, lsn);
      pos += 2;
    } else if (id === XLR_BLOCK_ID_TOPLEVEL_XID) {
      need(pos, 4, end, lsn);
      toplevelXid = v.getUint32(base + pos, true);
      pos += 4;
    } else if (id <= XLR_MAX_BLOCK_ID) {
      if (id <= maxBlockId) throw corrupt(lsn, `out-of-order block_id ${id}`);
      maxBlockId = id;
      need(pos, 3, end, lsn);
      const forkFlags = record[pos]!;
      const dataLength = v.getUint16(base + pos + 1, true);
      pos += 3;
      const hasData = (forkFlags & BKPBLOCK_HAS_DATA) !== 0;
      if (hasData !== (dataLength > 0)) throw corrupt(lsn, `block ${id}: BKPBLOCK_HAS_DATA does not match data length ${dataLength}`);
      payload += dataLength;
      const hasImage = (forkFlags & BKPBLOCK_HAS_IMAGE) !== 0;
      let applyImage = false;
      if (hasImage) {
        need(pos, 5, end, lsn);
        const imageLength = v.getUint16(base + pos, true);
        const holeOffset = v.getUint16(base + pos + 2, true);
        const bimgInfo = record[pos + 4]!;
        pos += 5;
        applyImage = (bimgInfo & applyBit) !== 0;
        const compressed = (bimgInfo & compressedMask) !== 0;
        const hasHole = (bimgInfo & BKPIMAGE_HAS_HOLE) !== 0;
        let holeLength: number;
        if (compressed) {
          if (hasHole) {
            need(pos, 2, end, lsn);
            holeLength = v.getUint16(base + pos, true);
            pos += 2;
          } else {
            holeLength = 0;
          }
        } else {
          holeLength = pageSize - imageLength;
        }
        if (hasHole && (holeOffset === 0 || holeLength === 0 || imageLength === pageSize)) {
          throw corrupt(lsn, `block ${id}: image has a hole but offset ${holeOffset} length ${holeLength} image ${imageLength}`);
        }
        if (!hasHole && (holeOffset !== 0 || holeLength !== 0)) throw corrupt(lsn, `block ${id}: image without hole has hole offset ${holeOffset} length ${holeLength}`);
        if (compressed && imageLength === pageSize) throw corrupt(lsn, `block ${id}: compressed image of full page length`);
        payload += imageLength;
      }
      if ((forkFlags & BKPBLOCK_SAME_REL) === 0) {
        need(pos, 12, end, lsn);
        spcOid = v.getUint32(base + pos, true);
        dbOid = v.getUint32(base + pos + 4, true);
        relNumber = v.getUint32(base + pos + 8, true);
        pos += 12;
        haveRel = true;
      } else if (!haveRel) {
        throw corrupt(lsn, `block ${id}: BKPBLOCK_SAME_REL set but no previous relation`);
      }
      need(pos, 4, end, lsn);
      const block = v.getUint32(base + pos, true);
      pos += 4;
      blocks.push({
        id,
        spcOid,
        dbOid,
        relNumber,
        fork: forkFlags & BKPBLOCK_FORK_MASK,
        block,
        hasImage,
        applyImage,
        willInit: (forkFlags & BKPBLOCK_WILL_INIT) !== 0,
        hasData,
      });
    } else {
      throw corrupt(lsn, `invalid block_id ${id}`);
    }
  }
  if (end - pos !== payload) throw corrupt(lsn, `record with invalid length (${end - pos} payload bytes, headers announce ${payload})`);

  return {
    lsn,
    endLsn,
    prevLsn: header.prevLsn,
    xid: header.xid,
    rmid: header.rmid,
    info: header.info,
    totalLength: header.totalLength,
    toplevelXid,
    blocks,
    mainData: record.subarray(end - mainLength, end),
  };
}

/** Guard of every header read: `n` more bytes must exist before the record's end. */
function need(pos: number, n: number, end: number, lsn: bigint): void {
  if (pos + n > end) throw corrupt(lsn, 'record with invalid length (headers run past its end)');
}

export function corrupt(lsn: bigint, detail: string): PgkeepError {
  return new PgkeepError(
    'WAL_CORRUPT',
    `WAL record at ${formatLsn(lsn)}: ${detail}`,
    'the WAL archive or pg_wal holds a damaged segment: take a new full backup, and check the storage that held it',
  );
}

function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}
