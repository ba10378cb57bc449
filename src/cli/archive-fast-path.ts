/**
 * archive-push and archive-get run once per WAL file under PostgreSQL, so their start-up cost
 * is paid for every segment. Loading oclif costs several times what these commands do, so
 * bin/run.js hands them here first: plain argument parsing, the same flags, the same output and
 * exit statuses as the oclif commands (src/commands/archive-*.ts, which stay the documented
 * interface and serve --help). Anything this parser does not recognise goes to oclif instead.
 */
import { parseArgs } from 'node:util';
import { openArchive } from '../app/archive/archive-context.js';
import { archiveGet } from '../app/archive/archive-get.js';
import type { ArchiveContext } from '../app/archive/archive-context.js';
import { MAX_BATCH_SIZE, pushWaitingFiles } from '../app/archive/archive-batch.js';
import { archivePush, walFileOnDisk } from '../app/archive/archive-push.js';
import { detachedFiller, fillPrefetch, MAX_PREFETCH, removePrefetchAfterRecovery } from '../app/archive/wal-prefetch.js';
import { ExitStatus } from '../errors.js';
import { initHashing } from '../repository/hash.js';
import { reportError } from './report-error.js';

const OPTIONS = {
  'backup-path': { type: 'string', short: 'B' },
  instance: { type: 'string' },
  'wal-file-path': { type: 'string' },
  'wal-file-name': { type: 'string' },
  overwrite: { type: 'boolean' },
  'batch-size': { type: 'string' },
  prefetch: { type: 'string' },
  'prefetch-fill': { type: 'boolean' },
} as const;

/** The exit status, or undefined when oclif should handle the command line instead. */
export async function runArchiveFastPath(command: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  if (command !== 'archive-push' && command !== 'archive-get') return undefined;
  let values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch {
    return undefined; // unknown flag, --help, a typo: oclif explains it properly
  }
  const repo = values['backup-path'] ?? env.PGKEEP_REPO;
  if (!repo || !values.instance || !values['wal-file-path'] || !values['wal-file-name']) return undefined;
  if (command === 'archive-get' && (values.overwrite !== undefined || values['batch-size'] !== undefined)) return undefined;
  if (command === 'archive-push' && (values.prefetch !== undefined || values['prefetch-fill'] !== undefined)) return undefined;
  // A value oclif would refuse goes to oclif, which says why.
  const batchSize = countIn(values['batch-size'] ?? '1', 1, MAX_BATCH_SIZE);
  const prefetch = countIn(values.prefetch ?? '0', 0, MAX_PREFETCH);
  if (batchSize === undefined || prefetch === undefined) return undefined;
  try {
    await initHashing();
    const ctx = await openArchive(repo, values.instance);
    if (command === 'archive-get') return (await getWithPrefetch(ctx, values['wal-file-name'], values['wal-file-path'], prefetch, values['prefetch-fill'] ?? false)) ? ExitStatus.ok : ExitStatus.error;
    await pushAndReport(ctx, values['wal-file-path'], values['wal-file-name'], values.overwrite ?? false, batchSize);
    return ExitStatus.ok;
  } catch (e) {
    return reportError(e);
  }
}

/** A whole number from `min` to `max` written in decimal digits, else undefined. */
function countIn(text: string, min: number, max: number): number | undefined {
  const n = Number(text);
  return /^[0-9]+$/.test(text) && n >= min && n <= max ? n : undefined;
}

/**
 * archive-get's work, for the fast path and the oclif command alike: false when the archive does
 * not hold the file. With `fill`, this run is the detached prefetch filler that an earlier
 * archive-get started (wal-prefetch.ts): it fills the prefetch directory beside %p and writes
 * nothing to %p itself.
 */
export async function getWithPrefetch(ctx: ArchiveContext, walName: string, walPath: string, prefetch: number, fill: boolean): Promise<boolean> {
  if (fill) {
    await fillPrefetch(ctx, walName, walFileOnDisk(walPath), prefetch);
    return true;
  }
  return archiveGet(ctx, walName, walPath, prefetch > 0 ? { depth: prefetch, start: detachedFiller(ctx.root, ctx.instance.name) } : undefined);
}

/**
 * archive-push's work and what it tells the server log, for the fast path and the oclif command
 * alike: the named file pushed, then up to `batchSize - 1` waiting ones. A batch that stopped
 * early is worth a WARNING line: the file it stopped at is left for PostgreSQL, whose own
 * archive_command run for it will fail or succeed on its own.
 */
export async function pushAndReport(ctx: ArchiveContext, walPath: string, walName: string, overwrite: boolean, batchSize: number): Promise<void> {
  const outcome = await archivePush(ctx, walPath, walName, overwrite);
  await removePrefetchAfterRecovery(walFileOnDisk(walPath));
  if (outcome === 'overwritten') process.stderr.write(`WARNING: ${walName} replaced a different file in the archive\n`);
  const batch = await pushWaitingFiles(ctx, walPath, walName, batchSize - 1);
  if (batch.stopped) process.stderr.write(`WARNING: --batch-size: ${batch.stopped.name} left for PostgreSQL to push (${batch.stopped.reason})\n`);
}
