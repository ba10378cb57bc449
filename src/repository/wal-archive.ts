/**
 * The WAL archive of an instance: `instances/<name>/wal/<file>`, one object per file that
 * archive_command pushed (segments, .history, .partial, .backup files).
 *
 * Each object is self-describing, so archive-get and validate need nothing else: a 32-byte
 * header, then the file as a stored file (plain, or framed compression):
 *
 *   magic "PGKW" | version u16 = 1 | algorithm u16 (0 none, else the stored-file id)
 *   | content size u64 | content xxh64 u64 | reserved u64 = 0
 *
 * The content checksum is known before the body is written (the pusher hashes the file first),
 * which is what lets a second push of the same file be recognised as a no-op.
 */
import type { CompressAlg } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import { isMissingObjectError, type ByteStore } from '../storage/byte-store.js';
import { walArchiveKey } from './layout.js';
import { StoredFileWriter, readStoredFile } from './stored-file.js';
import { algorithmById, algorithmId } from './stored-file-format.js';

export const WAL_ARCHIVE_MAGIC = Buffer.from('PGKW', 'latin1');
export const WAL_ARCHIVE_VERSION = 1;
export const WAL_ARCHIVE_HEADER_SIZE = 32;

/** Names archive_command hands over: segments, .partial, .backup and .history files. */
const WAL_FILE_NAME = /^([0-9A-F]{24})(\.partial|\.[0-9A-F]{8}\.backup)?$|^[0-9A-F]{8}\.history$/;

export function isWalFileName(name: string): boolean {
  return WAL_FILE_NAME.test(name);
}

export function assertWalFileName(name: string): void {
  if (!isWalFileName(name)) throw new PgkeepError('INVALID_ARGUMENT', `"${name}" is not a WAL file name`, 'pass %f as --wal-file-name');
}

export function archivedWalKey(instance: string, name: string): string {
  assertWalFileName(name);
  return `${walArchiveKey(instance)}/${name}`;
}

export interface ArchivedWal {
  name: string;
  alg: CompressAlg;
  size: number;
  checksum: string;
  storedSize: number;
}

function encodeHeader(alg: CompressAlg, size: number, checksum: string): Buffer {
  const h = Buffer.alloc(WAL_ARCHIVE_HEADER_SIZE);
  WAL_ARCHIVE_MAGIC.copy(h, 0);
  h.writeUInt16LE(WAL_ARCHIVE_VERSION, 4);
  h.writeUInt16LE(alg === 'none' ? 0 : algorithmId(alg), 6);
  h.writeBigUInt64LE(BigInt(size), 8);
  h.writeBigUInt64LE(BigInt(`0x${checksum}`), 16);
  return h;
}

/** The header of an archived file, or undefined when the archive does not hold it. */
export async function statArchivedWal(store: ByteStore, instance: string, name: string): Promise<ArchivedWal | undefined> {
  const key = archivedWalKey(instance, name);
  const st = await store.stat(key);
  if (!st) return undefined;
  let head = Buffer.alloc(0);
  try {
    for await (const chunk of store.openRead(key, { start: 0, end: WAL_ARCHIVE_HEADER_SIZE })) head = Buffer.concat([head, chunk]);
  } catch (e) {
    if (isMissingObjectError(e)) return undefined;
    throw e;
  }
  if (head.length < WAL_ARCHIVE_HEADER_SIZE || !head.subarray(0, 4).equals(WAL_ARCHIVE_MAGIC)) {
    throw new PgkeepError('BACKUP_CORRUPT', `archived WAL file ${key} has no valid header`, 'remove it and push the file again from the server, if it still has it');
  }
  const version = head.readUInt16LE(4);
  if (version > WAL_ARCHIVE_VERSION) throw new PgkeepError('REPO_FORMAT_UNSUPPORTED', `archived WAL file ${key} has format version ${version}`, 'upgrade pgkeep');
  const algId = head.readUInt16LE(6);
  const alg: CompressAlg | undefined = algId === 0 ? 'none' : algorithmById(algId);
  if (!alg) throw new PgkeepError('BACKUP_CORRUPT', `archived WAL file ${key} names unknown compression ${algId}`, 'remove it and push the file again');
  return {
    name,
    alg,
    size: Number(head.readBigUInt64LE(8)),
    checksum: head.readBigUInt64LE(16).toString(16).padStart(16, '0'),
    storedSize: st.size - WAL_ARCHIVE_HEADER_SIZE,
  };
}

/**
 * Stores a file durably (temporary name, fsync, rename, directory fsync): `content` is called
 * to stream the file's bytes into the writer; its checksum and size must be known beforehand.
 */
export async function writeArchivedWal(
  store: ByteStore,
  instance: string,
  name: string,
  meta: { size: number; checksum: string; alg: CompressAlg; level: number },
  content: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>,
): Promise<{ storedSize: number }> {
  const key = archivedWalKey(instance, name);
  const w = await StoredFileWriter.open(store, key, meta.alg, meta.level, encodeHeader(meta.alg, meta.size, meta.checksum));
  try {
    await content((chunk) => w.write(chunk));
    const r = await w.finish();
    if (r.checksum !== meta.checksum || r.size !== meta.size) {
      // The source changed between hashing and copying: nothing durable is left behind.
      throw new PgkeepError('IO_ERROR', `${name} changed while it was archived`, 'PostgreSQL retries archive_command; if it persists, check that nothing else writes to pg_wal');
    }
    return { storedSize: r.storedSize };
  } catch (e) {
    await w.abort().catch(() => undefined);
    throw e;
  }
}

/**
 * The content of an archived file; BACKUP_CORRUPT if its size or checksum differs from its header.
 * With `lend`, each chunk is valid only until the next is asked for (readStoredFile's `lend`):
 * for a consumer that writes, hashes or copies it first, reading then allocates nothing per chunk.
 */
export async function* readArchivedWal(store: ByteStore, instance: string, info: ArchivedWal, opts: { lend?: boolean } = {}): AsyncGenerator<Buffer> {
  yield* readStoredFile(store, archivedWalKey(instance, info.name), info.alg, { offset: WAL_ARCHIVE_HEADER_SIZE, verifyChecksum: info.checksum, lend: opts.lend === true });
}

/** Names of the archived files of an instance, sorted. */
export async function listArchivedWal(store: ByteStore, instance: string): Promise<string[]> {
  return (await store.list(walArchiveKey(instance))).filter(isWalFileName);
}
