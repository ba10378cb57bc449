import { Flags } from '@oclif/core';
import { openArchive } from '../app/archive/archive-context.js';
import { MAX_PREFETCH } from '../app/archive/wal-prefetch.js';
import { getWithPrefetch } from '../cli/archive-fast-path.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';

export default class ArchiveGet extends BaseCommand {
  static override summary = 'Fetch a WAL file from the archive (for restore_command)';
  static override description = [
    'Exits with status 1 and no output when the file is not in the archive: recovery asks for files that do not exist and ends cleanly at the end of the archive.',
    `With --prefetch N, a background process fetches the next N segments into pg_wal/pgkeep-prefetch while recovery replays, and the following runs take them from there: each is checked against the archive's checksum first, and anything not prefetched is fetched directly. It uses up to N segments of space in pg_wal; the directory is removed by the first archive-push after recovery ends.`,
  ].join('\n\n');
  static override examples = [
    "restore_command = 'pgkeep archive-get -B /backups --instance main --wal-file-path %p --wal-file-name %f'",
    "restore_command = 'pgkeep archive-get -B /backups --instance main --wal-file-path %p --wal-file-name %f --prefetch 16'",
  ];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'wal-file-path': Flags.string({ required: true, description: 'where to write the file (%p)' }),
    'wal-file-name': Flags.string({ required: true, description: 'the WAL file name (%f)' }),
    prefetch: Flags.integer({ min: 0, max: MAX_PREFETCH, default: 0, description: `fetch up to N segments ahead in the background, 0 to ${MAX_PREFETCH} (0: off)`, helpValue: 'N' }),
    'prefetch-fill': Flags.boolean({ hidden: true, default: false, description: 'internal: be the background process that fills the prefetch directory' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ArchiveGet);
    const ctx = await openArchive(flags['backup-path'], flags.instance);
    if (!(await getWithPrefetch(ctx, flags['wal-file-name'], flags['wal-file-path'], flags.prefetch, flags['prefetch-fill']))) process.exitCode = 1;
  }
}
