import { Flags } from '@oclif/core';
import { openArchive } from '../app/archive/archive-context.js';
import { archivePush } from '../app/archive/archive-push.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';

export default class ArchivePush extends BaseCommand {
  static override summary = 'Store a WAL file in the archive (for archive_command)';
  static override examples = ["archive_command = 'pgkeep archive-push -B /backups --instance main --wal-file-path %p --wal-file-name %f'"];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'wal-file-path': Flags.string({ required: true, description: 'the file to archive (%p, relative to the data directory)' }),
    'wal-file-name': Flags.string({ required: true, description: 'its name (%f)' }),
    overwrite: Flags.boolean({ default: false, description: 'replace a different file of the same name in the archive' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ArchivePush);
    const ctx = await openArchive(flags['backup-path'], flags.instance);
    const outcome = await archivePush(ctx, flags['wal-file-path'], flags['wal-file-name'], flags.overwrite);
    if (outcome === 'overwritten') process.stderr.write(`WARNING: ${flags['wal-file-name']} replaced a different file in the archive\n`);
  }
}
