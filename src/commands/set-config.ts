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
    'retention-redundancy': Flags.integer({ min: 0, description: 'retention: keep this many valid FULL backups and what follows them (0: off)', helpValue: 'N' }),
    'retention-window': Flags.integer({ min: 0, description: 'retention: keep what recovery to any point of the last DAYS days needs (0: off)', helpValue: 'DAYS' }),
    'wal-depth': Flags.integer({ min: 0, description: 'delete-wal: keep point-in-time recovery from the N newest backups per timeline only (0: from every kept backup)', helpValue: 'N' }),
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
        'retention-redundancy': optionalString(flags['retention-redundancy']),
        'retention-window': optionalString(flags['retention-window']),
        'wal-depth': optionalString(flags['wal-depth']),
      },
    });
    this.log(`instance ${flags.instance} updated`);
  }
}

function optionalString(n: number | undefined): string | undefined {
  return n === undefined ? undefined : String(n);
}
