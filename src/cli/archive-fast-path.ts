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
import { archivePush } from '../app/archive/archive-push.js';
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
  const batchSize = values['batch-size'] === undefined ? 1 : Number(values['batch-size']);
  // A value oclif would refuse goes to oclif, which says why.
  if (!/^[0-9]+$/.test(values['batch-size'] ?? '1') || batchSize < 1 || batchSize > MAX_BATCH_SIZE) return undefined;
  try {
    await initHashing();
    const ctx = await openArchive(repo, values.instance);
    if (command === 'archive-get') return (await archiveGet(ctx, values['wal-file-name'], values['wal-file-path'])) ? ExitStatus.ok : ExitStatus.error;
    await pushAndReport(ctx, values['wal-file-path'], values['wal-file-name'], values.overwrite ?? false, batchSize);
    return ExitStatus.ok;
  } catch (e) {
    return reportError(e);
  }
}

/**
 * archive-push's work and what it tells the server log, for the fast path and the oclif command
 * alike: the named file pushed, then up to `batchSize - 1` waiting ones. A batch that stopped
 * early is worth a WARNING line: the file it stopped at is left for PostgreSQL, whose own
 * archive_command run for it will fail or succeed on its own.
 */
export async function pushAndReport(ctx: ArchiveContext, walPath: string, walName: string, overwrite: boolean, batchSize: number): Promise<void> {
  const outcome = await archivePush(ctx, walPath, walName, overwrite);
  if (outcome === 'overwritten') process.stderr.write(`WARNING: ${walName} replaced a different file in the archive\n`);
  const batch = await pushWaitingFiles(ctx, walPath, walName, batchSize - 1);
  if (batch.stopped) process.stderr.write(`WARNING: --batch-size: ${batch.stopped.name} left for PostgreSQL to push (${batch.stopped.reason})\n`);
}
