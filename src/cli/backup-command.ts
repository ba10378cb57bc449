/**
 * The `backup` command's flags and body, apart from oclif: the oclif command (commands/backup.ts,
 * which serves --help and reports flag errors) and the fast path that runs a backup without
 * loading oclif (backup-fast-path.ts) both run this, their flags parsed from the same specs
 * (oclif-flags.ts for the one, plain-flag-parser.ts for the other).
 */
import { takeBackup } from '../app/backup/take-backup.js';
import { debugPhase } from '../debug.js';
import { BACKUP_MODES, COMPRESS_ALGS, type BackupMode, type CompressAlg } from '../core/backup-types.js';
import { formatLsn } from '../core/lsn.js';
import { applyRetention } from '../app/retention/apply-retention.js';
import { retentionLines } from '../app/retention/retention-lines.js';
import { parseExpireTime, parseTtl, setBackupAttributes } from '../app/retention/pin-backup.js';
import { errorMessage, isPgkeepError, PgkeepError } from '../errors.js';
import type { CommandIo } from './command-io.js';
import { connectionFlagSpecs, progressFlagSpec, repoFlagSpec, threadsFlagSpec, waitFlagSpec } from './common-flag-specs.js';
import type { FlagSpecs, ParsedFlags } from './flag-spec.js';
import { figuresFromMetrics } from './progress-display.js';

export const backupFlagSpecs = {
  'backup-path': repoFlagSpec,
  instance: { kind: 'string', required: true, description: 'instance name', helpValue: 'NAME' },
  wait: waitFlagSpec,
  'backup-mode': { kind: 'string', char: 'b', required: true, options: BACKUP_MODES, description: 'FULL, or an incremental mode' },
  stream: { kind: 'boolean', default: false, description: 'carry the WAL needed for consistency inside the backup' },
  threads: threadsFlagSpec,
  progress: progressFlagSpec,
  'compress-algorithm': { kind: 'string', options: COMPRESS_ALGS, description: 'compression of stored files (default: the instance setting, else zstd)' },
  'compress-level': { kind: 'integer', description: 'compression level' },
  note: { kind: 'string', description: 'free text kept with the backup' },
  'skip-block-validation': { kind: 'boolean', default: false, description: 'do not verify page headers and checksums while reading, nor in the validation after' },
  'skip-space-check': { kind: 'boolean', default: false, description: 'start even if the repository seems to lack room for the estimated size' },
  validate: { kind: 'boolean', default: true, allowNo: true, description: 'validate the backup when it is written (--no-validate skips)' },
  'archive-timeout': { kind: 'integer', default: 300, min: 1, description: 'without --stream: seconds to wait for the backup\'s WAL to be archived' },
  parent: { kind: 'string', description: 'incremental modes: the parent backup (default: the newest OK one)', helpValue: 'ID' },
  resume: { kind: 'boolean', allowNo: true, description: 'resume the newest interrupted backup of this mode, reusing the files it stored (default: resume one that fits; --no-resume starts afresh)' },
  ttl: { kind: 'string', description: 'pin the new backup for this long (N with s, min, h or d; see set-backup)', helpValue: 'TTL', exclusive: ['expire-time'] },
  'expire-time': { kind: 'string', description: 'pin the new backup until this time', helpValue: 'TIME', exclusive: ['ttl'] },
  'delete-expired': { kind: 'boolean', default: false, description: 'after a successful backup: delete what the retention policy no longer keeps' },
  'merge-expired': { kind: 'boolean', default: false, description: 'after a successful backup: merge expired chains into kept incremental backups' },
  'delete-wal': { kind: 'boolean', default: false, description: 'after a successful backup: delete archived WAL no kept backup needs' },
  ...connectionFlagSpecs,
} as const satisfies FlagSpecs;

export type BackupFlags = ParsedFlags<typeof backupFlagSpecs>;

/** Takes the backup the flags describe, then pins it and applies retention if asked. */
export async function runBackup(flags: BackupFlags, io: CommandIo): Promise<void> {
  // Read before the backup, so that a mistyped pin fails before any work.
  const pin = { ttlSeconds: flags.ttl === undefined ? undefined : parseTtl(flags.ttl), expireTime: flags['expire-time'] === undefined ? undefined : parseExpireTime(flags['expire-time']) };
  const ctx = await io.openRepo(flags['backup-path']);
  debugPhase('program loaded, repository and catalog open');
  const b = await takeBackup(ctx, {
    instance: flags.instance,
    mode: flags['backup-mode'] as BackupMode,
    stream: flags.stream,
    threads: flags.threads,
    compressAlg: flags['compress-algorithm'] as CompressAlg | undefined,
    compressLevel: flags['compress-level'],
    note: flags.note,
    skipBlockValidation: flags['skip-block-validation'],
    skipSpaceCheck: flags['skip-space-check'],
    validate: flags.validate,
    archiveTimeoutSeconds: flags['archive-timeout'],
    waitSeconds: flags.wait,
    parentId: flags.parent,
    resume: flags.resume,
    connection: { host: flags.host, port: flags.port, user: flags.user, dbname: flags.dbname },
    progress: io.openProgress(flags.progress),
  });
  const figures = figuresFromMetrics(b.metrics);
  if (figures) io.reportFigures(figures);
  io.log(`backup ${b.id} ${b.status}: ${b.mode}, ${b.dataBytes} bytes of data, ${b.storedBytes} stored, LSN ${formatLsn(b.startLsn)} - ${b.stopLsn === null ? '?' : formatLsn(b.stopLsn)}`);
  // What the repository holds differs from what was copied: a failure, and no pinning or
  // retention on the strength of it.
  if (b.status === 'CORRUPT') {
    throw new PgkeepError('BACKUP_CORRUPT', `backup ${b.id} was written, but its validation found it corrupt: ${b.error ?? 'no detail'}`, 'check the repository\'s disk, then delete the backup (`pgkeep delete -i ID`) and take another');
  }
  // Pinning and retention come after a successful backup; if they fail, the backup stays as it is.
  try {
    if (pin.ttlSeconds !== undefined || pin.expireTime !== undefined) {
      const pinned = await setBackupAttributes(ctx, { instance: b.instance, id: b.id, ...pin });
      io.log(`backup ${b.id}: pinned until ${pinned.expireTime?.toISOString() ?? '(not pinned)'}`);
    }
    if (flags['delete-expired'] || flags['merge-expired'] || flags['delete-wal']) {
      const req = { instance: b.instance, deleteExpired: flags['delete-expired'], mergeExpired: flags['merge-expired'], deleteWal: flags['delete-wal'], dryRun: false, threads: flags.threads, waitSeconds: flags.wait };
      for (const line of retentionLines(await applyRetention(ctx, req), req)) io.log(line);
    }
  } catch (e) {
    io.reporter.warn(`backup ${b.id} is ${b.status}, but what follows it failed: ${errorMessage(e)}${isPgkeepError(e) && e.hint ? ` (${e.hint})` : ''}`);
  }
}
