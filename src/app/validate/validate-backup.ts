/**
 * Validation of a backup without PostgreSQL: the manifest's own checksum, then for every stored
 * file its size and checksum over the stored bytes, the checksum of its content after
 * decompression, and, for relation files, every page's header and data checksum (pages at or
 * past the backup's start LSN may be torn copies that WAL replay rewrites, so they may fail).
 *
 * One pass per file: the stored bytes are hashed while they are decompressed. A backup that fails
 * becomes CORRUPT and its descendants ORPHAN; one that passes becomes OK.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { isPgkeepError, PgkeepError } from '../../errors.js';
import { readPageLsn, verifyPage } from '../../postgres/page.js';
import { RELSEG_BLOCKS, parseRelationPath } from '../../postgres/relation-file.js';
import { createHasher } from '../../repository/hash.js';
import { backupDataKey } from '../../repository/layout.js';
import { readManifest } from '../../repository/manifest.js';
import { PageDeltaReader } from '../../repository/page-delta.js';
import { readStoredFile } from '../../repository/stored-file.js';
import { forEachParallel } from '../parallel.js';
import { saveBackup, type RepoContext } from '../repo-context.js';

export interface ValidationProblem {
  path: string;
  problem: string;
}

export interface ValidationResult {
  backupId: string;
  ok: boolean;
  filesChecked: number;
  bytesChecked: number;
  problems: ValidationProblem[];
}

const VALIDATABLE = new Set(['DONE', 'OK', 'CORRUPT', 'ORPHAN']);

export async function validateBackup(ctx: RepoContext, record: BackupRecord, threads: number): Promise<ValidationResult> {
  if (!VALIDATABLE.has(record.status)) {
    throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${record.id} is ${record.status} and cannot be validated`, record.status === 'RUNNING' ? 'wait for it to finish' : 'delete it with `pgkeep delete -i ID`');
  }
  const result: ValidationResult = { backupId: record.id, ok: true, filesChecked: 0, bytesChecked: 0, problems: [] };
  let files: FileEntry[] = [];
  try {
    files = (await readManifest(ctx.store, record.instance, record.id, record.generation)).files;
  } catch (e) {
    result.problems.push({ path: 'manifest.jsonl', problem: isPgkeepError(e) ? e.message : String(e) });
  }

  const stored = files.filter((f) => f.storage === 'full' || f.storage === 'delta');
  await forEachParallel(stored, threads, async (entry) => {
    const problem = await checkEntry(ctx, record, entry);
    result.filesChecked++;
    result.bytesChecked += entry.storedSize;
    if (problem) result.problems.push({ path: entry.path, problem });
  });

  result.ok = result.problems.length === 0;
  result.problems.sort((a, b) => (a.path < b.path ? -1 : 1));
  await recordOutcome(ctx, record, result);
  return result;
}

async function checkEntry(ctx: RepoContext, record: BackupRecord, entry: FileEntry): Promise<string | undefined> {
  if (entry.storage === 'delta') return checkDeltaEntry(ctx, record, entry);
  const key = backupDataKey(record.instance, record.id, entry.path, record.generation);
  const rel = entry.kind === 'data' ? parseRelationPath(entry.path) : undefined;
  const pages = rel ? new PageChecker(record, (rel.segNo ?? 0) * RELSEG_BLOCKS) : undefined;
  const hasher = await createHasher();
  let size = 0;
  try {
    const stat = await ctx.store.stat(key);
    if (!stat) return 'file missing from the repository';
    if (stat.size !== entry.storedSize) return `stored size ${stat.size} differs from the manifest's ${entry.storedSize}`;
    for await (const chunk of readStoredFile(ctx.store, key, entry.compressAlg, { verifyStoredChecksum: entry.storedChecksum ?? undefined })) {
      hasher.update(chunk);
      size += chunk.length;
      const bad = pages?.feed(chunk);
      if (bad) return bad;
    }
  } catch (e) {
    return isPgkeepError(e) ? e.message : e instanceof Error ? e.message : String(e);
  }
  if (size !== entry.size) return `content is ${size} bytes, the manifest says ${entry.size}`;
  if (entry.checksum !== null && hasher.digestHex() !== entry.checksum) return 'content checksum differs from the manifest';
  return undefined;
}

/**
 * A page-delta file: stored size and checksum, its structure, every page it holds, and its
 * trailer against the manifest (block count at backup time, number of pages). The content
 * checksum of the whole file can only be checked when the chain is rebuilt (restore does).
 */
async function checkDeltaEntry(ctx: RepoContext, record: BackupRecord, entry: FileEntry): Promise<string | undefined> {
  const key = backupDataKey(record.instance, record.id, entry.path, record.generation);
  const rel = parseRelationPath(entry.path);
  const firstBlock = (rel?.segNo ?? 0) * RELSEG_BLOCKS;
  const bs = record.blockSize;
  try {
    const stat = await ctx.store.stat(key);
    if (!stat) return 'file missing from the repository';
    if (stat.size !== entry.storedSize) return `stored size ${stat.size} differs from the manifest's ${entry.storedSize}`;
    const reader = new PageDeltaReader(ctx.store, key, entry.compressAlg, { blockSize: bs, verifyStoredChecksum: entry.storedChecksum ?? undefined });
    for await (const run of reader.runs()) {
      for (let i = 0; i < run.count; i++) {
        const block = run.start + i;
        const v = verifyPage(run.pages, i * bs, bs, firstBlock + block, record.checksumsEnabled);
        if (v === 'valid' || v === 'zero' || v === 'new') continue;
        if (readPageLsn(run.pages, i * bs) >= record.startLsn) continue;
        return `block ${block}: ${v === 'bad-checksum' ? 'page checksum mismatch' : 'invalid page header'}`;
      }
    }
    if (entry.blocks !== undefined && reader.fileBlocks !== entry.blocks) return `holds a block count of ${reader.fileBlocks}, the manifest says ${entry.blocks}`;
    if (entry.deltaBlocks !== undefined && reader.pageCount !== entry.deltaBlocks) return `holds ${reader.pageCount} pages, the manifest says ${entry.deltaBlocks}`;
  } catch (e) {
    return isPgkeepError(e) ? e.message : e instanceof Error ? e.message : String(e);
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
    if (v === 'valid' || v === 'zero' || v === 'new') return undefined;
    if (readPageLsn(buf, off) >= this.record.startLsn) return undefined; // torn while copied; replay rewrites it
    return `block ${block}: ${v === 'bad-checksum' ? 'page checksum mismatch' : 'invalid page header'}`;
  }
}

async function recordOutcome(ctx: RepoContext, record: BackupRecord, result: ValidationResult): Promise<void> {
  const current = ctx.catalog.requireBackup(record.instance, record.id);
  if (result.ok) {
    if (current.status === 'DONE' || current.status === 'CORRUPT') await saveBackup(ctx, { ...current, status: 'OK', error: null });
    return;
  }
  const first = result.problems[0]!;
  await saveBackup(ctx, { ...current, status: 'CORRUPT', error: `${first.path}: ${first.problem}` });
  for (const d of ctx.catalog.descendantsOf(record.instance, record.id)) {
    if (d.status === 'OK' || d.status === 'DONE') await saveBackup(ctx, { ...d, status: 'ORPHAN', error: `parent ${record.id} is CORRUPT` });
  }
}
