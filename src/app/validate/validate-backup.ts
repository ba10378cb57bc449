/**
 * Validation of a backup without PostgreSQL: the manifest's own checksum, then for every stored
 * file its size and checksum over the stored bytes, the checksum of its content after
 * decompression, and, for relation files, every page's header and data checksum (pages at or
 * past the backup's start LSN may be torn copies that WAL replay rewrites, so they may fail).
 *
 * One pass per file: the stored bytes are hashed while they are decompressed. A backup that fails
 * becomes CORRUPT and its descendants ORPHAN; one that passes becomes OK.
 */
import type { BackupRecord, FileEntry, StoredPart } from '../../core/backup-types.js';
import { errorMessage, isPgkeepError, PgkeepError } from '../../errors.js';
import { walFileNamesBetween } from '../../core/lsn.js';
import { readBackupControl } from '../../repository/backup-control.js';
import { walArchiveKey } from '../../repository/layout.js';
import { readArchivedWal, statArchivedWal } from '../../repository/wal-archive.js';
import { readManifest } from '../../repository/manifest.js';
import type { ByteStore } from '../../storage/byte-store.js';
import { PosixStore } from '../../storage/posix-store.js';
import { forEachParallel } from '../../core/parallel.js';
import { workerEntry, WorkerPool } from '../worker-pool.js';
import { silentProgress, type OperationProgress } from '../progress.js';
import { saveBackup, type RepoContext } from '../repo-context.js';
import { checkFileJob, type CheckFileJob, type ValidateWorkerData } from './check-stored-file.js';

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

export interface ValidateOptions {
  /**
   * false with --skip-block-validation: no page is judged (stored and content checksums still
   * are). A backup taken with that flag has no page judged whatever this says.
   */
  checkPages?: boolean | undefined;
  /** Told each file as it is checked (--progress). */
  progress?: OperationProgress | undefined;
}

export async function validateBackup(ctx: RepoContext, record: BackupRecord, threads: number, opts: ValidateOptions = {}): Promise<ValidationResult> {
  const progress = opts.progress ?? silentProgress;
  const checkPages = (opts.checkPages ?? true) && record.blockValidationSkipped !== true;
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
  try {
    await readBackupControl(ctx.store, record.instance, record.id);
  } catch (e) {
    // The catalog row still holds the record: marking the backup below rewrites backup.json from it.
    result.problems.push({ path: 'backup.json', problem: isPgkeepError(e) ? e.message : String(e) });
  }

  const stored = files.filter((f) => f.storage === 'full' || f.storage === 'delta');
  // Content of a delta entry: the pages it holds (the file's other pages are elsewhere in the chain).
  const content = (e: FileEntry) => (e.storage === 'delta' ? (e.deltaBlocks ?? 0) * record.blockSize : e.size);
  progress.start(stored.length, stored.reduce((n, e) => n + content(e), 0), `validate ${record.id}`);
  // A file stored in parts is checked part by part, in parallel like separate files.
  const tasks = stored.flatMap((entry): { entry: FileEntry; index: number; part: StoredPart | undefined }[] => (entry.parts ? entry.parts.map((part, index) => ({ entry, index, part })) : [{ entry, index: -1, part: undefined }]));
  const checker = openFileChecker(ctx.store, threads, tasks.length, stored.reduce((n, e) => n + content(e), 0));
  try {
    await forEachParallel(tasks, threads, async ({ entry, index, part }, _i, slot) => {
      const problem = await checker.check({ record, entry, checkPages, ...(part ? { part: index } : {}) }, slot);
      const last = !part || index === (entry.parts?.length ?? 0) - 1;
      if (last) result.filesChecked++;
      result.bytesChecked += part ? part.storedSize : entry.storedSize;
      if (problem) result.problems.push({ path: entry.path, problem });
      const partBytes = part && entry.partSize !== undefined ? Math.min(entry.partSize, entry.size - index * entry.partSize) : content(entry);
      progress.advance(last ? 1 : 0, partBytes);
    });
  } finally {
    await checker.close();
  }
  progress.finish();
  if (!record.stream) {
    result.problems.push(...(await checkArchivedWal(ctx, record, (storedSize) => {
      result.filesChecked++;
      result.bytesChecked += storedSize;
    })));
  }

  result.ok = result.problems.length === 0;
  result.problems.sort((a, b) => (a.path < b.path ? -1 : 1));
  await recordOutcome(ctx, record, result);
  return result;
}

/**
 * A backup without --stream is consistent only with the archived WAL from its start to its stop
 * LSN: each of those segments must be in the archive, whole and matching its checksum.
 */
export async function checkArchivedWal(ctx: RepoContext, record: BackupRecord, checked?: (storedSize: number) => void): Promise<ValidationProblem[]> {
  if (record.stopLsn === null) return [];
  const problems: ValidationProblem[] = [];
  for (const name of walFileNamesBetween(record.timeline, record.startLsn, record.stopLsn - 1n, record.walSegSize)) {
    const path = `${walArchiveKey(record.instance)}/${name}`;
    try {
      const info = await statArchivedWal(ctx.store, record.instance, name);
      if (!info) {
        problems.push({ path, problem: 'WAL segment the backup needs is missing from the archive' });
        continue;
      }
      let size = 0;
      for await (const chunk of readArchivedWal(ctx.store, record.instance, info, { lend: true })) size += chunk.length;
      if (size !== record.walSegSize) problems.push({ path, problem: `archived segment is ${size} bytes, not ${record.walSegSize}` });
      checked?.(info.storedSize);
    } catch (e) {
      problems.push({ path, problem: errorMessage(e) });
    }
  }
  return problems;
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

/** Below this many bytes of content to check, threads cost more to start than they save. */
const WORKER_THRESHOLD_BYTES = 32 * 1024 * 1024;

interface FileChecker {
  /** The problem of one stored file (or part), or undefined; on worker `slot`'s thread. */
  check(job: CheckFileJob, slot: number): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * Checks files on the main thread (slot 0) and, with -j 2 or more and enough bytes, N - 1 worker
 * threads (validate-worker.ts): each checking thread decodes, hashes and checks pages itself.
 */
function openFileChecker(store: ByteStore, threads: number, taskCount: number, contentBytes: number): FileChecker {
  const local = (job: CheckFileJob) => checkFileJob(store, job);
  const entry = workerEntry(import.meta.url, './validate-worker.js');
  if (threads < 2 || taskCount < 2 || contentBytes < WORKER_THRESHOLD_BYTES || !entry || !(store instanceof PosixStore)) {
    return { check: local, close: () => Promise.resolve() };
  }
  const pool = WorkerPool.start<CheckFileJob, string | null>(entry, Math.min(threads, taskCount) - 1, { root: store.root } satisfies ValidateWorkerData);
  return {
    check: async (job, slot) => (slot === 0 ? local(job) : ((await pool.run(job)) ?? undefined)),
    close: () => pool.close(),
  };
}
