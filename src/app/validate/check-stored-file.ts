/**
 * One stored file of a backup, checked without PostgreSQL (validate-backup.ts): its stored size
 * and checksum, its content checksum after decompression, and, for relation files, every page's
 * header and data checksum (pages with an LSN from the backup's start to its stop may be torn
 * copies that WAL replay rewrites, so they may fail; with --skip-block-validation, pages are not
 * judged). Returns the problem, or undefined when the file is sound.
 *
 * Kept apart from validate-backup.ts so that it needs nothing but the store: with -j 2 or more,
 * files are checked by the main thread and N - 1 worker threads (validate-worker.ts), since page
 * checks, hashing and (with lent chunks) zstd decoding all run on the checking thread.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { errorMessage } from '../../errors.js';
import { passesPageCheck, readPageLsn, verifyPage, type PageVerdict } from '../../postgres/page.js';
import { RELSEG_BLOCKS, parseRelationPath } from '../../postgres/relation-file.js';
import { backupDataKey } from '../../repository/layout.js';
import { PageDeltaReader } from '../../repository/page-delta.js';
import { readStoredFile } from '../../repository/stored-file.js';
import { createHasher, type Hasher } from '../../repository/hash.js';
import { createContentHasher, partKey, partRanges } from '../../repository/stored-parts.js';
import type { ByteStore } from '../../storage/byte-store.js';

/** One check for a worker thread: a whole stored file, or part `part` of a file stored in parts. */
export interface CheckFileJob {
  record: BackupRecord;
  entry: FileEntry;
  part?: number;
  /** false with --skip-block-validation: stored and content checksums only, no page judged. */
  checkPages: boolean;
}

/** What a validate worker is started with. */
export interface ValidateWorkerData {
  root: string;
}

export async function checkStoredEntry(store: ByteStore, record: BackupRecord, entry: FileEntry, checkPages: boolean): Promise<string | undefined> {
  if (entry.storage === 'delta') return checkDeltaEntry(store, record, entry, checkPages);
  if (entry.parts !== undefined) {
    for (let i = 0; i < entry.parts.length; i++) {
      const bad = await checkStoredPart(store, record, entry, i, checkPages);
      if (bad) return bad;
    }
    return undefined;
  }
  return checkStoredBytes(store, record, entry, checkPages, {
    key: backupDataKey(record.instance, record.id, entry.path, record.generation),
    storedSize: entry.storedSize,
    storedChecksum: entry.storedChecksum,
    // A merged file may carry its chain's part-tree checksum without being stored in parts.
    hasher: createContentHasher(entry),
    treeChecksum: entry.partSize !== undefined,
    checksum: entry.checksum,
    size: entry.size,
    firstBlockInFile: 0,
  });
}

/**
 * Part `index` of a file stored in parts (repository/stored-parts.ts), checked like a whole
 * stored file: stored size and checksum, content length and checksum, every page. That the
 * entry's checksums are the tree of its parts' was checked when the manifest was read.
 */
export async function checkStoredPart(store: ByteStore, record: BackupRecord, entry: FileEntry, index: number, checkPages: boolean): Promise<string | undefined> {
  const part = entry.parts?.[index];
  const range = entry.partSize !== undefined ? partRanges(entry.size, entry.partSize)[index] : undefined;
  if (!part || !range) return `has no part ${index}`;
  const problem = await checkStoredBytes(store, record, entry, checkPages, {
    key: partKey(backupDataKey(record.instance, record.id, entry.path, record.generation), index),
    storedSize: part.storedSize,
    storedChecksum: part.storedChecksum,
    hasher: createHasher(),
    treeChecksum: false,
    checksum: part.checksum,
    size: range.length,
    firstBlockInFile: range.offset / record.blockSize,
  });
  return problem === undefined ? undefined : `part ${index}: ${problem}`;
}

/** A whole stored file or one stored part: where it is and what the manifest says of it. */
interface StoredBytes {
  key: string;
  storedSize: number;
  storedChecksum: string | null;
  /** Hashes the content in the form `checksum` is in. */
  hasher: Hasher;
  /** `checksum` is a tree of part checksums (stored-parts.ts), not one hash of the content. */
  treeChecksum: boolean;
  checksum: string | null;
  /** Content bytes. */
  size: number;
  /** Block of the file (of the relation segment) the content starts at. */
  firstBlockInFile: number;
}

/** Stored size and checksum, content length and checksum, and every page of a relation file. */
async function checkStoredBytes(store: ByteStore, record: BackupRecord, entry: FileEntry, checkPages: boolean, b: StoredBytes): Promise<string | undefined> {
  const rel = checkPages && entry.kind === 'data' ? parseRelationPath(entry.path) : undefined;
  const pages = rel ? new PageChecker(record, (rel.segNo ?? 0) * RELSEG_BLOCKS + b.firstBlockInFile) : undefined;
  let size = 0;
  // Uncompressed, the stored bytes are the content, and the writer gave both checksums from one
  // hash: the stored checksum's check is then the content's, so the bytes are hashed once.
  const hasher = entry.compressAlg === 'none' && b.storedChecksum !== null && b.storedChecksum === b.checksum && !b.treeChecksum ? undefined : b.hasher;
  try {
    const stat = await store.stat(b.key);
    if (!stat) return 'file missing from the repository';
    if (stat.size !== b.storedSize) return `stored size ${stat.size} differs from the manifest's ${b.storedSize}`;
    for await (const chunk of readStoredFile(store, b.key, entry.compressAlg, { verifyStoredChecksum: b.storedChecksum ?? undefined, lend: true })) {
      hasher?.update(chunk);
      size += chunk.length;
      const bad = pages?.feed(chunk);
      if (bad) return bad;
    }
  } catch (e) {
    return errorMessage(e);
  }
  if (size !== b.size) return `content is ${size} bytes, the manifest says ${b.size}`;
  if (hasher && b.checksum !== null && hasher.digestHex() !== b.checksum) return 'content checksum differs from the manifest';
  return undefined;
}

/** One check of a validate job (validate-backup.ts, in-process or on a worker thread). */
export function checkFileJob(store: ByteStore, job: CheckFileJob): Promise<string | undefined> {
  return job.part === undefined ? checkStoredEntry(store, job.record, job.entry, job.checkPages) : checkStoredPart(store, job.record, job.entry, job.part, job.checkPages);
}

/**
 * A page-delta file: stored size and checksum, its structure, every page it holds, and its
 * trailer against the manifest (block count at backup time, number of pages). The content
 * checksum of the whole file can only be checked when the chain is rebuilt (restore does).
 */
async function checkDeltaEntry(store: ByteStore, record: BackupRecord, entry: FileEntry, checkPages: boolean): Promise<string | undefined> {
  const key = backupDataKey(record.instance, record.id, entry.path, record.generation);
  const rel = parseRelationPath(entry.path);
  const firstBlock = (rel?.segNo ?? 0) * RELSEG_BLOCKS;
  const bs = record.blockSize;
  try {
    const stat = await store.stat(key);
    if (!stat) return 'file missing from the repository';
    if (stat.size !== entry.storedSize) return `stored size ${stat.size} differs from the manifest's ${entry.storedSize}`;
    const reader = new PageDeltaReader(store, key, entry.compressAlg, { blockSize: bs, verifyStoredChecksum: entry.storedChecksum ?? undefined });
    for await (const run of reader.runs()) {
      if (!checkPages) continue; // the runs are still read: structure and stored checksum
      for (let i = 0; i < run.count; i++) {
        const block = run.start + i;
        const v = verifyPage(run.pages, i * bs, bs, firstBlock + block, record.checksumsEnabled);
        if (passesPageCheck(v)) continue;
        if (writtenDuringBackup(record, readPageLsn(run.pages, i * bs))) continue;
        return damagedBlockText(block, v);
      }
    }
    if (entry.blocks !== undefined && reader.fileBlocks !== entry.blocks) return `holds a block count of ${reader.fileBlocks}, the manifest says ${entry.blocks}`;
    if (entry.deltaBlocks !== undefined && reader.pageCount !== entry.deltaBlocks) return `holds ${reader.pageCount} pages, the manifest says ${entry.deltaBlocks}`;
  } catch (e) {
    return errorMessage(e);
  }
  return undefined;
}

/** Checks pages as content streams by, carrying a partial page across chunk boundaries. */
class PageChecker {
  private readonly page: Buffer;
  private filled = 0;
  private block = 0;

  constructor(
    private readonly record: BackupRecord,
    private readonly firstBlock: number,
  ) {
    this.page = Buffer.alloc(record.blockSize);
  }

  feed(chunk: Buffer): string | undefined {
    const bs = this.record.blockSize;
    let off = 0;
    while (off < chunk.length) {
      if (this.filled === 0 && chunk.length - off >= bs) {
        const bad = this.check(chunk, off);
        if (bad) return bad;
        off += bs;
        continue;
      }
      const n = Math.min(bs - this.filled, chunk.length - off);
      chunk.copy(this.page, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === bs) {
        this.filled = 0;
        const bad = this.check(this.page, 0);
        if (bad) return bad;
      }
    }
    return undefined;
  }

  private check(buf: Buffer, off: number): string | undefined {
    const block = this.block++;
    const v = verifyPage(buf, off, this.record.blockSize, this.firstBlock + block, this.record.checksumsEnabled);
    if (passesPageCheck(v)) return undefined;
    if (writtenDuringBackup(this.record, readPageLsn(buf, off))) return undefined; // torn while copied; replay rewrites it
    return damagedBlockText(block, v);
  }
}

/**
 * A failing page may be a torn copy only if the server could have been writing it during the
 * backup: its LSN from the start LSN to the stop LSN (read-data-file.ts).
 */
function writtenDuringBackup(record: BackupRecord, lsn: bigint): boolean {
  return lsn >= record.startLsn && (record.stopLsn === null || lsn <= record.stopLsn);
}

/** What validation says of a damaged page (a verdict passesPageCheck refused). */
function damagedBlockText(block: number, v: PageVerdict): string {
  return `block ${block}: ${v === 'bad-checksum' ? 'page checksum mismatch' : 'invalid page header'}`;
}
