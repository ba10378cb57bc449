import { Flags } from '@oclif/core';
import { openArchive } from '../app/archive/archive-context.js';
import { MAX_BATCH_SIZE } from '../app/archive/archive-batch.js';
import { pushAndReport } from '../cli/archive-fast-path.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';

export default class ArchivePush extends BaseCommand {
  static override summary = 'Store a WAL file in the archive (for archive_command)';
  static override examples = [
    "archive_command = 'pgkeep archive-push -B /backups --instance main --wal-file-path %p --wal-file-name %f'",
    "archive_command = 'pgkeep archive-push -B /backups --instance main --wal-file-path %p --wal-file-name %f --batch-size 16'",
  ];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'wal-file-path': Flags.string({ required: true, description: 'the file to archive (%p, relative to the data directory)' }),
    'wal-file-name': Flags.string({ required: true, description: 'its name (%f)' }),
    overwrite: Flags.boolean({ default: false, description: 'replace a different file of the same name in the archive' }),
    'batch-size': Flags.integer({
      default: 1,
      min: 1,
      max: MAX_BATCH_SIZE,
      description: 'push up to this many files in one run: the one named, then those waiting in pg_wal/archive_status, oldest first, each marked done for PostgreSQL',
      helpValue: 'N',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ArchivePush);
    const ctx = await openArchive(flags['backup-path'], flags.instance);
    await pushAndReport(ctx, flags['wal-file-path'], flags['wal-file-name'], flags.overwrite, flags['batch-size']);
  }
}
