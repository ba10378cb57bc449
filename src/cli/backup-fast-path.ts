/**
 * `backup` without oclif's command machinery. A PTRACK backup of a small change takes a few
 * hundred milliseconds, and loading oclif's config, help and command classes and dispatching
 * through them was a tenth of it (docs/performance.md). bin/run.js hands a backup here first:
 * the command's own flags (cli/backup-command.ts) parsed by oclif's own parser, loaded alone,
 * then the same body and output as the oclif command. `--help`, and any command line the
 * parser rejects, go to oclif instead, which prints its help or its error as for any command.
 */
import { parse } from '@oclif/core/parser';
import { ExitStatus } from '../errors.js';
import { initHashing } from '../repository/hash.js';
import { backupFlags, runBackup, type BackupFlags } from './backup-command.js';
import { CommandIo } from './command-io.js';

/** The exit status, or undefined when oclif should handle the command line instead. */
export async function runBackupFastPath(argv: string[]): Promise<number | undefined> {
  const end = argv.indexOf('--');
  if ((end === -1 ? argv : argv.slice(0, end)).includes('--help')) return undefined;
  let flags: BackupFlags;
  try {
    flags = (await parse(argv, { flags: backupFlags, strict: true })).flags;
  } catch {
    return undefined; // a missing or unknown flag, a bad value: oclif says which
  }
  const io = new CommandIo();
  try {
    await initHashing();
    await runBackup(flags, io);
    return ExitStatus.ok;
  } catch (e) {
    return io.fail(e);
  } finally {
    io.close();
  }
}
