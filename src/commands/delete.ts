import { Flags } from '@oclif/core';
import { executeDelete, planDelete } from '../app/delete-backup.js';
import { applyRetention } from '../app/retention/apply-retention.js';
import { retentionLines } from '../app/retention/retention-lines.js';
import { PgkeepError } from '../errors.js';
import { BaseCommand, repoFlag, threadsFlag, waitFlag } from '../cli/base-command.js';

export default class Delete extends BaseCommand {
  static override summary = 'Delete a backup and every backup that depends on it, or what the retention policy lets go';
  static override description = 'With -i: that backup and its descendants. With --delete-expired, --merge-expired and/or --delete-wal: apply the instance\'s retention policy (set-config --retention-redundancy, --retention-window, --wal-depth); see docs/retention.md.';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    wait: waitFlag,
    'backup-id': Flags.string({ char: 'i', description: 'backup to delete', helpValue: 'ID' }),
    'delete-expired': Flags.boolean({ default: false, description: 'delete the backups the retention policy no longer keeps' }),
    'merge-expired': Flags.boolean({ default: false, description: 'merge expired chains into the kept incremental backups that need them' }),
    'delete-wal': Flags.boolean({ default: false, description: 'delete archived WAL no kept backup needs (see --wal-depth)' }),
    threads: threadsFlag,
    'dry-run': Flags.boolean({ default: false, description: 'list what would be deleted, delete nothing' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Delete);
    const retention = flags['delete-expired'] || flags['merge-expired'] || flags['delete-wal'];
    if (retention === (flags['backup-id'] !== undefined)) {
      throw new PgkeepError('INVALID_ARGUMENT', retention ? '-i cannot be combined with --delete-expired, --merge-expired or --delete-wal' : 'nothing to delete', 'give -i ID, or --delete-expired / --merge-expired / --delete-wal');
    }
    const ctx = await this.openRepo(flags['backup-path']);
    if (retention) {
      const req = { instance: flags.instance, deleteExpired: flags['delete-expired'], mergeExpired: flags['merge-expired'], deleteWal: flags['delete-wal'], dryRun: flags['dry-run'], threads: flags.threads, waitSeconds: flags.wait };
      const r = await applyRetention(ctx, req);
      for (const line of retentionLines(r, req)) this.log(line);
      return;
    }
    const plan = planDelete(ctx, flags.instance, flags['backup-id']!);
    if (flags['dry-run']) {
      for (const b of plan.backups) this.log(`would delete backup ${b.id} (${b.mode}, ${b.status})`);
      return;
    }
    // Planned again under the lock: what is printed is what was deleted.
    const done = await executeDelete(ctx, flags.instance, plan, flags.wait);
    for (const b of done.backups) this.log(`deleted backup ${b.id} (${b.mode}, ${b.status})`);
    this.log(`${done.backups.length} backup(s) deleted`);
  }
}
