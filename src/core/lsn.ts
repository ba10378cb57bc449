/**
 * Log sequence numbers as bigint, and WAL segment naming.
 *
 * LSNs are 64-bit and pass 2^53 on long-lived clusters, so they are never JavaScript numbers.
 * Text form is PostgreSQL's "X/Y": high and low 32-bit halves in upper-case hex.
 */
import { PgkeepError } from '../errors.js';

export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): Lsn {
  const m = LSN_TEXT.exec(text.trim());
  if (!m) throw new PgkeepError('INVALID_ARGUMENT', `invalid LSN "${text}"`, 'write an LSN as PostgreSQL does, e.g. 0/16B3F28');
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  const high = Number(lsn >> 32n);
  const low = Number(lsn & 0xffffffffn);
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}

/** Segment number holding `lsn` for segments of `segSize` bytes. */
export function segmentNumber(lsn: Lsn, segSize: number): bigint {
  return lsn / BigInt(segSize);
}

/** WAL file name (24 hex digits) of segment `segNo` on timeline `tli`. */
export function walFileName(tli: number, segNo: bigint, segSize: number): string {
  const segmentsPerXLogId = 0x100000000n / BigInt(segSize);
  const log = segNo / segmentsPerXLogId;
  const seg = segNo % segmentsPerXLogId;
  return hex8(BigInt(tli)) + hex8(log) + hex8(seg);
}

/** The segment number and timeline named by a 24-digit WAL file name. */
export function parseWalFileName(name: string, segSize: number): { tli: number; segNo: bigint } {
  if (!/^[0-9A-F]{24}$/.test(name)) throw new PgkeepError('INVALID_ARGUMENT', `"${name}" is not a WAL segment name`);
  const segmentsPerXLogId = 0x100000000n / BigInt(segSize);
  const tli = Number.parseInt(name.slice(0, 8), 16);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  return { tli, segNo: log * segmentsPerXLogId + seg };
}

/** Names of every segment from the one holding `start` to the one holding `end`, inclusive. */
export function walFileNamesBetween(tli: number, start: Lsn, end: Lsn, segSize: number): string[] {
  const names: string[] = [];
  for (let s = segmentNumber(start, segSize); s <= segmentNumber(end, segSize); s++) {
    names.push(walFileName(tli, s, segSize));
  }
  return names;
}

function hex8(v: bigint): string {
  return v.toString(16).toUpperCase().padStart(8, '0');
}
