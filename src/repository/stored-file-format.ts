/**
 * Byte layout of a compressed stored file (docs/repository-format.md, "Stored files").
 *
 *   header  'PGKC' | u8 version (1) | u8 algorithm id | u16 reserved (0)      8 bytes
 *   frame   u32 rawLength | u32 storedWord | payload                          repeated
 *   end     u32 0 | u32 0                                                     8 bytes
 *
 * All integers little-endian. storedWord: low 31 bits = payload length; bit 31 set = the payload
 * is the raw bytes (the chunk did not compress). The end marker makes a file cut at a frame
 * boundary detectable without the manifest. Files stored with 'none' have no header at all.
 */
import type { CompressAlg } from '../core/backup-types.js';

export const STORED_MAGIC = Buffer.from('PGKC', 'latin1');
export const STORED_FORMAT_VERSION = 1;
export const STORED_HEADER_SIZE = 8;
export const FRAME_HEADER_SIZE = 8;
/** Raw bytes per frame: large enough to compress well, small enough to keep memory flat. */
export const STORED_CHUNK_SIZE = 1024 * 1024;
/** Payload bound for a frame read back: a compressed chunk never needs more than this. */
export const MAX_STORED_FRAME = 2 * STORED_CHUNK_SIZE;
export const RAW_PAYLOAD_FLAG = 0x8000_0000;

const ALG_IDS: Record<Exclude<CompressAlg, 'none'>, number> = { gzip: 1, lz4: 2, zstd: 3 };

export function algorithmId(alg: Exclude<CompressAlg, 'none'>): number {
  return ALG_IDS[alg];
}

export function algorithmById(id: number): Exclude<CompressAlg, 'none'> | undefined {
  for (const [alg, v] of Object.entries(ALG_IDS)) if (v === id) return alg as Exclude<CompressAlg, 'none'>;
  return undefined;
}

export function encodeStoredHeader(alg: Exclude<CompressAlg, 'none'>): Buffer {
  const b = Buffer.alloc(STORED_HEADER_SIZE);
  STORED_MAGIC.copy(b, 0);
  b.writeUInt8(STORED_FORMAT_VERSION, 4);
  b.writeUInt8(algorithmId(alg), 5);
  return b;
}

export function encodeFrameHeader(rawLength: number, storedLength: number, rawPayload: boolean): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_SIZE);
  b.writeUInt32LE(rawLength, 0);
  b.writeUInt32LE((storedLength | (rawPayload ? RAW_PAYLOAD_FLAG : 0)) >>> 0, 4);
  return b;
}

export const END_MARKER = Buffer.alloc(FRAME_HEADER_SIZE);
