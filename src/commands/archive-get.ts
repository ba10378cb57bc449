import { Flags } from '@oclif/core';
import { openArchive } from '../app/archive/archive-context.js';
import { archiveGet } from '../app/archive/archive-get.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';

export default class ArchiveGet extends BaseCommand {
  static override summary = 'Fetch a WAL file from the archive (for restore_command)';
  static override description = 'Exits with status 1 and no output when the file is not in the archive: recovery asks for files that do not exist and ends cleanly at the end of the archive.';
  static override examples = ["restore_command = 'pgkeep archive-get -B /backups --instance main --wal-file-path %p --wal-file-name %f'"];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'wal-file-path': Flags.string({ required: true, description: 'where to write the file (%p)' }),
    'wal-file-name': Flags.string({ required: true, description: 'the WAL file name (%f)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ArchiveGet);
    const ctx = await openArchive(flags['backup-path'], flags.instance);
    if (!(await archiveGet(ctx, flags['wal-file-name'], flags['wal-file-path']))) process.exitCode = 1;
  }
}
