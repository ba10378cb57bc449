import { Flags } from '@oclif/core';
import { parseExpireTime, parseTtl, setBackupAttributes } from '../app/retention/pin-backup.js';
import { BaseCommand, repoFlag, waitFlag } from '../cli/base-command.js';

export default class SetBackup extends BaseCommand {
  static override summary = 'Pin a backup (retention keeps it until a time) or set its note';
  static override description = 'A pinned backup, and every backup it restores through, is kept by `delete --delete-expired` until its expire time, whatever the retention policy says. --ttl counts from the moment the backup recovers to; --ttl 0 unpins.';
  static override examples = [
    '<%= config.bin %> set-backup -B /backups --instance main -i T4LG2Y --ttl 30d',
    "<%= config.bin %> set-backup -B /backups --instance main -i T4LG2Y --expire-time '2027-01-31 00:00:00+00' --note 'before the upgrade'",
  ];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'backup-id': Flags.string({ char: 'i', required: true, description: 'the backup', helpValue: 'ID' }),
    ttl: Flags.string({ description: 'pin for this long from the backup\'s recovery point: N with s, min, h or d (0 unpins)', helpValue: 'TTL', exclusive: ['expire-time'] }),
    'expire-time': Flags.string({ description: 'pin until this time (ISO 8601; UTC without a zone)', helpValue: 'TIME', exclusive: ['ttl'] }),
    note: Flags.string({ description: 'free text kept with the backup (\'\' clears it)', helpValue: 'TEXT' }),
    wait: waitFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SetBackup);
    const ctx = await this.openRepo(flags['backup-path']);
    const b = await setBackupAttributes(ctx, {
      instance: flags.instance,
      id: flags['backup-id'],
      ttlSeconds: flags.ttl === undefined ? undefined : parseTtl(flags.ttl),
      expireTime: flags['expire-time'] === undefined ? undefined : parseExpireTime(flags['expire-time']),
      note: flags.note,
      waitSeconds: flags.wait,
    });
    const pin = b.expireTime ? `pinned until ${b.expireTime.toISOString()}` : 'not pinned';
    this.log(`backup ${b.id}: ${pin}${b.note === null ? '' : `, note: ${b.note}`}`);
  }
}
