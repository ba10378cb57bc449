import { Flags } from '@oclif/core';
import { toConfig } from '../app/instances.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';

export default class ShowConfig extends BaseCommand {
  static override summary = 'Show an instance\'s settings';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    format: Flags.string({ options: ['plain', 'json'], default: 'plain', description: 'output format' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ShowConfig);
    const ctx = await this.openRepo(flags['backup-path']);
    const cfg = toConfig(ctx.catalog.requireInstance(flags.instance));
    if (flags.format === 'json') {
      this.printJson(cfg);
      return;
    }
    const lines: [string, unknown][] = [
      ['instance', cfg.name],
      ['pgdata', cfg.pgdata],
      ['system-identifier', cfg.systemIdentifier],
      ['server-version-num', cfg.serverVersionNum],
      ['block-size', cfg.blockSize],
      ['wal-segment-size', cfg.walSegSize],
      ['pghost', cfg.connection.host ?? '(default)'],
      ['pgport', cfg.connection.port ?? '(default)'],
      ['pguser', cfg.connection.user ?? '(default)'],
      ['pgdatabase', cfg.connection.dbname ?? '(default)'],
      ['compress-algorithm', cfg.settings['compress-algorithm'] ?? 'none'],
      ['compress-level', cfg.settings['compress-level'] ?? '(default)'],
    ];
    for (const [k, v] of lines) this.log(`${k} = ${String(v)}`);
  }
}
