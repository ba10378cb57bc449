import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { setInstanceConfig } from '../app/instances.js';
import { COMPRESS_ALGS } from '../core/backup-types.js';
import { BaseCommand, connectionFlags, repoFlag } from '../cli/base-command.js';

export default class SetConfig extends BaseCommand {
  static override summary = 'Change an instance\'s settings';
  static override examples = ['<%= config.bin %> set-config -B /backups --instance main --compress-algorithm zstd --compress-level 3'];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    pgdata: Flags.string({ char: 'D', description: 'the cluster\'s data directory' }),
    'compress-algorithm': Flags.string({ options: [...COMPRESS_ALGS], description: 'default compression of backups' }),
    'compress-level': Flags.integer({ description: 'default compression level' }),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SetConfig);
    const ctx = await this.openRepo(flags['backup-path']);
    await setInstanceConfig(ctx, flags.instance, {
      pgdata: flags.pgdata ? resolve(flags.pgdata) : undefined,
      connection: { host: flags.host, port: flags.port, user: flags.user, dbname: flags.dbname },
      settings: {
        'compress-algorithm': flags['compress-algorithm'],
        'compress-level': flags['compress-level'] === undefined ? undefined : String(flags['compress-level']),
      },
    });
    this.log(`instance ${flags.instance} updated`);
  }
}
