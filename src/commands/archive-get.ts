import { Flags } from '@oclif/core';
import { archiveGet } from '../app/archive/archive-get.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';

export default class ArchiveGet extends BaseCommand {
  static override summary = 'Fetch a WAL file from the archive (for restore_command)';
  static override description = 'Exits with status 1 and no error output when the file is not in the archive: recovery asks for files that do not exist and ends cleanly at the end of the archive.';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'wal-file-path': Flags.string({ required: true, description: 'where to write the file (%p)' }),
    'wal-file-name': Flags.string({ required: true, description: 'the WAL file name (%f)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ArchiveGet);
    this.quiet = true;
    const ctx = await this.openRepo(flags['backup-path']);
    const found = await archiveGet(ctx, flags.instance, flags['wal-file-name'], flags['wal-file-path']);
    if (!found) process.exitCode = 1;
  }
}
