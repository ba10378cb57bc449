import { Flags } from '@oclif/core';
import { deleteInstance } from '../app/instances.js';
import { BaseCommand, repoFlag, waitFlag } from '../cli/base-command.js';

export default class DelInstance extends BaseCommand {
  static override summary = 'Remove an instance with all its backups and WAL';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    wait: waitFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DelInstance);
    const ctx = await this.openRepo(flags['backup-path']);
    const r = await deleteInstance(ctx, flags.instance, flags.wait);
    this.log(`instance ${flags.instance} deleted (${r.backupsRemoved} backups removed)`);
  }
}
