import { Flags } from '@oclif/core';
import { toConfig } from '../app/instances.js';
import { instanceRetention } from '../app/instance-settings.js';
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
    const row = ctx.catalog.requireInstance(flags.instance);
    const cfg = toConfig(row);
    const retention = instanceRetention(row);
    if (flags.format === 'json') {
      this.printJson({ ...cfg, retention: { redundancy: retention.redundancy, window_days: retention.windowDays, wal_depth: retention.walDepth } });
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
      ['retention-redundancy', retention.redundancy === 0 ? '0 (off)' : retention.redundancy],
      ['retention-window', retention.windowDays === 0 ? '0 (off)' : retention.windowDays],
      ['wal-depth', retention.walDepth === 0 ? '0 (off)' : retention.walDepth],
    ];
    for (const [k, v] of lines) this.log(`${k} = ${String(v)}`);
  }
}
