import { Flags } from '@oclif/core';
import { executeDelete, planDelete } from '../app/delete-backup.js';
import { BaseCommand, repoFlag } from '../cli/base-command.js';

export default class Delete extends BaseCommand {
  static override summary = 'Delete a backup and every backup that depends on it';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'backup-id': Flags.string({ char: 'i', required: true, description: 'backup to delete', helpValue: 'ID' }),
    'dry-run': Flags.boolean({ default: false, description: 'list what would be deleted, delete nothing' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Delete);
    const ctx = await this.openRepo(flags['backup-path']);
    const plan = planDelete(ctx, flags.instance, flags['backup-id']);
    for (const b of plan.backups) this.log(`${flags['dry-run'] ? 'would delete' : 'deleting'} backup ${b.id} (${b.mode}, ${b.status})`);
    if (flags['dry-run']) return;
    await executeDelete(ctx, flags.instance, plan);
    this.log(`${plan.backups.length} backup(s) deleted`);
  }
}
