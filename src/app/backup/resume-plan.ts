/**
 * Resuming an interrupted backup (docs/resume.md).
 *
 *   choose    which ERROR backup, if any, the new backup resumes (--resume, --no-resume, auto)
 *   reuse     per source file, link the interrupted attempt's stored file into the new backup
 *             when that is provably what a fresh copy would store; else the copy goes on as usual
 *   finish    once the new backup is DONE, remove the backup it resumed
 *   keep      when a backup fails, keep the stored files its journal names (and nothing else)
 *
 * A resumed backup is a new backup with its own id and its own pg_backup_start: only stored
 * relation files are taken over, never a backup_label, pg_control or WAL.
 */
import { stat } from 'node:fs/promises';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { formatLsn } from '../../core/lsn.js';
import { mayReuseStorage, pageUnchangedSince, resumeCandidates, resumeIncompatibility, type AttemptFacts, type ResumeAttempt } from '../../core/resume-rules.js';
import { errnoCode, errorMessage, fromIoError, PgkeepError } from '../../errors.js';
import { debugLine } from '../../debug.js';
import { readPageLsn } from '../../postgres/page.js';
import type { SourceEntry } from '../../postgres/pgdata-walker.js';
import { isDataFileForBlockIncremental, parseRelationPath, RELSEG_BLOCKS } from '../../postgres/relation-file.js';
import { readBackupJournal, type BackupJournal } from '../../repository/backup-journal.js';
import { backupDataKey, backupDataPrefix, backupJournalKey } from '../../repository/layout.js';
import { createContentHasher, storedFileKeys } from '../../repository/stored-parts.js';
import { removeBackup } from '../delete-backup.js';
import type { RepoContext } from '../repo-context.js';
import { entryWithoutData, type CopyTarget } from './copy-entry.js';
import { READ_BUFFER_BYTES, readDataFilePages, type PageCheckCounters } from './read-data-file.js';

/** The interrupted backup a new one resumes, with its journal. */
export interface ResumeSource {
  backup: BackupRecord;
  journal: BackupJournal;
}

/**
 * `want`: true for --resume (nothing to resume is NOTHING_TO_RESUME), false for --no-resume
 * (never), undefined to resume when a fitting interrupted backup exists. The newest ERROR backup
 * of the same mode (and parent) that has a journal naming stored files is the one considered.
 */
export async function chooseResume(ctx: RepoContext, instance: string, want: boolean | undefined, now: AttemptFacts): Promise<ResumeSource | undefined> {
  if (want === false) return undefined;
  let found: ResumeSource | undefined;
  for (const b of resumeCandidates(ctx.catalog.listBackups(instance, { statuses: ['ERROR'], mode: now.mode }), now.mode, now.parentId)) {
    let journal: BackupJournal | undefined;
    try {
      journal = await readBackupJournal(ctx.store, instance, b.id);
    } catch (e) {
      ctx.reporter.warn(`backup ${b.id} cannot be resumed: ${errorMessage(e)}`);
      continue;
    }
    if (journal && journal.entries.size > 0) {
      found = { backup: b, journal };
      break;
    }
  }
  const what = `${now.mode} backup of instance ${instance}${now.parentId === null ? '' : ` on parent ${now.parentId}`}`;
  if (!found) {
    if (want === true) throw new PgkeepError('NOTHING_TO_RESUME', `there is no interrupted ${what} to resume`, 'run the backup without --resume to start a new one');
    return undefined;
  }
  const why = resumeIncompatibility(found.journal.attempt, now);
  if (why !== undefined) {
    if (want === true) {
      throw new PgkeepError('NOTHING_TO_RESUME', `interrupted backup ${found.backup.id} cannot be resumed: ${why}`, `run the backup with --no-resume to start a new one; pgkeep delete --instance ${instance} -i ${found.backup.id} frees its space`);
    }
    ctx.reporter.info(`not resuming interrupted backup ${found.backup.id}: ${why}; starting afresh`);
    return undefined;
  }
  return found;
}

/**
 * Decides, file by file, whether the interrupted attempt's stored copy can stand in for a fresh
 * copy, and links it into the new backup when it can. Counts what it reused.
 */
export class FileReuse {
  filesReused = 0;
  /** Content bytes of the files reused, and what they occupy in the repository. */
  bytesReused = 0;
  storedBytesReused = 0;
  private readonly attempt: ResumeAttempt;
  /** Read buffers of finished checks, one per check running at once. */
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly source: ResumeSource,
    private readonly target: CopyTarget,
  ) {
    this.attempt = source.journal.attempt;
  }

  /**
   * The new backup's entry for `src`, linked to the interrupted attempt's stored file, or
   * undefined when the file must be copied. Reuse needs all of:
   *   - a relation main or init fork, journalled as a stored file of a kind this mode may reuse;
   *   - the stored file present with the journalled stored size;
   *   - the source file now the journalled size, every page with an LSN below the attempt's
   *     start LSN (0 for a zero page), pages verified as a copy verifies them, and the content's xxh64
   *     equal to the journalled checksum (the bytes a fresh copy would store are those stored).
   */
  async reuse(src: SourceEntry, counters: PageCheckCounters): Promise<FileEntry | undefined> {
    if (src.kind !== 'data') return undefined;
    const old = this.source.journal.entries.get(src.path);
    if (!old || old.kind !== 'data' || !mayReuseStorage(this.attempt.mode, old.storage)) return undefined;
    const rel = parseRelationPath(src.path);
    if (!rel || !isDataFileForBlockIncremental(rel)) return undefined;
    const bs = this.target.blockSize;
    if (old.checksum === null || old.blocks === undefined || old.size !== old.blocks * bs) return undefined;
    const oldKey = backupDataKey(this.attempt.instance, this.attempt.backupId, src.path);
    // A file stored in parts: every part's stored file must be there, with its size.
    const keys = storedFileKeys(oldKey, old);
    const sizes = old.parts ? old.parts.map((p) => p.storedSize) : [old.storedSize];
    for (let i = 0; i < keys.length; i++) {
      if ((await this.target.store.stat(keys[i]!))?.size !== sizes[i]) {
        notReused(src.path, `stored file ${keys[i]} is missing or not ${sizes[i]} bytes`);
        return undefined;
      }
    }
    const buffer = this.spare.pop() ?? Buffer.allocUnsafe(READ_BUFFER_BYTES);
    try {
      if (!(await this.unchangedSinceAttempt(src, old, buffer, counters, rel.segNo * RELSEG_BLOCKS))) return undefined;
    } finally {
      this.spare.push(buffer);
    }

    const newKey = backupDataKey(this.target.instance, this.target.backupId, src.path);
    const newKeys = storedFileKeys(newKey, old);
    for (let i = 0; i < keys.length; i++) await this.target.store.link(keys[i]!, newKeys[i]!);
    this.filesReused++;
    this.bytesReused += old.size;
    this.storedBytesReused += old.storedSize;
    const entry: FileEntry = {
      ...entryWithoutData(src, this.target),
      size: old.size,
      blocks: old.blocks,
      storage: old.storage,
      storedSize: old.storedSize,
      storedChecksum: old.storedChecksum,
      checksum: old.checksum,
      compressAlg: old.compressAlg,
    };
    if (old.deltaBlocks !== undefined) entry.deltaBlocks = old.deltaBlocks;
    if (old.partSize !== undefined) entry.partSize = old.partSize;
    if (old.parts !== undefined) entry.parts = old.parts;
    return entry;
  }

  /** Reads the source file once: same size, pages unchanged since the attempt began, same content. */
  private async unchangedSinceAttempt(src: SourceEntry, old: FileEntry, buffer: Buffer, counters: PageCheckCounters, firstBlock: number): Promise<boolean> {
    let size: number;
    try {
      size = (await stat(src.absPath)).size;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw fromIoError(e, 'stat', src.absPath);
    }
    if (size !== old.size) return notReused(src.path, `${size} bytes now, ${old.size} then`);
    const bs = this.target.blockSize;
    const opts = { blockSize: bs, checksumsEnabled: this.target.checksumsEnabled, startLsn: this.target.startLsn, verify: this.target.verifyPages, firstBlock };
    // In the journalled checksum's form (part-tree for a file stored in parts).
    const content = createContentHasher(old);
    let blocks = 0;
    for await (const pages of readDataFilePages(src.absPath, src.path, buffer, opts, counters)) {
      for (let off = 0; off < pages.length; off += bs) {
        const lsn = readPageLsn(pages, off);
        if (!pageUnchangedSince(lsn, this.attempt.startLsn)) return notReused(src.path, `its block ${blocks + off / bs} has LSN ${formatLsn(lsn)}, not below the attempt's start ${formatLsn(this.attempt.startLsn)}`);
      }
      content.update(pages);
      blocks += pages.length / bs;
    }
    if (blocks !== old.blocks || content.digestHex() !== old.checksum) return notReused(src.path, 'its content differs from the stored copy');
    return true;
  }
}

/**
 * With PGKEEP_DEBUG, says why a journalled file is copied again rather than reused (a test that
 * expects a reuse shows it when it fails). Returns false, the check's answer.
 */
function notReused(path: string, why: string): false {
  debugLine(`${path} copied again, not reused: ${why}`);
  return false;
}

/** INFO line at the start of a resumed backup. */
export function describeResumeStart(source: ResumeSource): string {
  const a = source.journal.attempt;
  return `resuming interrupted backup ${a.backupId} (started at LSN ${formatLsn(a.startLsn)}, ${source.journal.entries.size} stored files journalled); pass --no-resume to start afresh`;
}

/**
 * The new backup is DONE: remove the backup it resumed, and the ones that one resumed in turn
 * (a backup interrupted twice), while they are still ERROR. The caller holds the instance lock.
 */
export async function finishResume(ctx: RepoContext, source: ResumeSource): Promise<string[]> {
  const removed: string[] = [];
  let next: string | null = source.backup.id;
  while (next !== null) {
    const b = ctx.catalog.getBackup(source.backup.instance, next);
    if (!b || b.status !== 'ERROR') break;
    next = b.id === source.backup.id ? source.journal.attempt.resumedFrom : await resumedFromOf(ctx, b);
    await removeBackup(ctx, b);
    removed.push(b.id);
  }
  return removed;
}

async function resumedFromOf(ctx: RepoContext, b: BackupRecord): Promise<string | null> {
  try {
    return (await readBackupJournal(ctx.store, b.instance, b.id))?.attempt.resumedFrom ?? null;
  } catch {
    return null;
  }
}

/**
 * A failed backup keeps what its journal names: temporaries of writers that are gone and every
 * stored file the journal does not name are removed. Returns how many stored files were kept;
 * with none, the backup's data and journal are removed altogether (nothing to resume).
 */
export async function keepJournalledFiles(ctx: RepoContext, record: BackupRecord): Promise<number> {
  const dataPrefix = backupDataPrefix(record.instance, record.id, record.generation);
  const journal = await readBackupJournal(ctx.store, record.instance, record.id).catch(() => undefined);
  if (!journal || journal.entries.size === 0) {
    await ctx.store.removeTree(dataPrefix);
    await ctx.store.remove(backupJournalKey(record.instance, record.id));
    return 0;
  }
  await ctx.store.cleanupTemporaries(dataPrefix);
  const entries = journal.entries;
  // The stored files the journal names: a file stored in parts keeps its parts.
  const kept = new Set([...entries.values()].flatMap((e) => storedFileKeys(e.path, e)));
  // Directories on the way to a kept file, so that the walk below can tell them from files.
  const keptDirs = new Set<string>();
  for (const path of entries.keys()) {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) keptDirs.add(path.slice(0, i));
  }
  const prune = async (rel: string): Promise<void> => {
    for (const name of await ctx.store.list(rel === '' ? dataPrefix : `${dataPrefix}/${rel}`)) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (kept.has(path)) continue;
      if (keptDirs.has(path)) await prune(path);
      else await ctx.store.removeTree(`${dataPrefix}/${path}`);
    }
  };
  await prune('');
  return entries.size;
}
