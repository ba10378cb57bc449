import { BaseCommand } from '../cli/base-command.js';
import { backupFlagSpecs, runBackup } from '../cli/backup-command.js';
import { oclifFlags } from '../cli/oclif-flags.js';

/** The documented `backup` command; bin/run.js usually runs its body without oclif (cli/backup-fast-path.ts). */
export default class Backup extends BaseCommand {
  static override summary = 'Take a backup of a running cluster';
  static override examples = ['<%= config.bin %> backup -B /backups --instance main -b FULL --stream -j 4 --compress-algorithm zstd'];
  static override flags = oclifFlags(backupFlagSpecs);

  async run(): Promise<void> {
    const { flags } = await this.parse(Backup);
    await runBackup(flags, this.io);
  }
}
