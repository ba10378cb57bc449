/**
 * `backup` without oclif. A PTRACK backup of a small change takes a few hundred milliseconds, and
 * loading oclif's config, help and command classes and dispatching through them was a tenth of
 * it, and loading its parser alone 8-11 ms more (docs/performance.md). bin/run.js hands a backup
 * here first: the command's flags (cli/backup-command.ts) parsed from their specs by
 * plain-flag-parser.ts, then the same body and output as the oclif command. `--help`, and any
 * command line that parser leaves alone (an unusual form, or one to be rejected), go to oclif
 * instead, which parses it or prints its help or its error as for any command.
 */
import { ExitStatus } from '../errors.js';
import { initHashing } from '../repository/hash.js';
import { backupFlagSpecs, runBackup } from './backup-command.js';
import { CommandIo } from './command-io.js';
import { parsePlainFlags } from './plain-flag-parser.js';

/** The exit status, or undefined when oclif should handle the command line instead. */
export async function runBackupFastPath(argv: string[]): Promise<number | undefined> {
  const end = argv.indexOf('--');
  if ((end === -1 ? argv : argv.slice(0, end)).includes('--help')) return undefined;
  const flags = parsePlainFlags(argv, backupFlagSpecs);
  if (flags === undefined) return undefined; // oclif parses it, or says what is wrong
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
