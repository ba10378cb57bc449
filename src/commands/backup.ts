import { Flags } from '@oclif/core';
import { takeBackup } from '../app/backup/take-backup.js';
import { BACKUP_MODES, COMPRESS_ALGS, type BackupMode, type CompressAlg } from '../core/backup-types.js';
import { formatLsn } from '../core/lsn.js';
import { BaseCommand, connectionFlags, repoFlag, threadsFlag } from '../cli/base-command.js';

export default class Backup extends BaseCommand {
  static override summary = 'Take a backup of a running cluster';
  static override examples = ['<%= config.bin %> backup -B /backups --instance main -b FULL --stream -j 4 --compress-algorithm zstd'];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    'backup-mode': Flags.string({ char: 'b', required: true, options: [...BACKUP_MODES], description: 'FULL, or an incremental mode' }),
    stream: Flags.boolean({ default: false, description: 'carry the WAL needed for consistency inside the backup' }),
    threads: threadsFlag,
    'compress-algorithm': Flags.string({ options: [...COMPRESS_ALGS], description: 'compression of stored files (default: the instance setting, else none)' }),
    'compress-level': Flags.integer({ description: 'compression level' }),
    note: Flags.string({ description: 'free text kept with the backup' }),
    'skip-block-validation': Flags.boolean({ default: false, description: 'do not verify page headers and checksums while reading' }),
    validate: Flags.boolean({ default: true, allowNo: true, description: 'validate the backup when it is written (--no-validate skips)' }),
    'archive-timeout': Flags.integer({ default: 300, min: 1, description: 'without --stream: seconds to wait for the backup\'s WAL to be archived' }),
    parent: Flags.string({ description: 'incremental modes: the parent backup (default: the newest OK one)', helpValue: 'ID' }),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Backup);
    const ctx = await this.openRepo(flags['backup-path']);
    const b = await takeBackup(ctx, {
      instance: flags.instance,
      mode: flags['backup-mode'] as BackupMode,
      stream: flags.stream,
      threads: flags.threads,
      compressAlg: flags['compress-algorithm'] as CompressAlg | undefined,
      compressLevel: flags['compress-level'],
      note: flags.note,
      skipBlockValidation: flags['skip-block-validation'],
      validate: flags.validate,
      archiveTimeoutSeconds: flags['archive-timeout'],
      parentId: flags.parent,
      connection: { host: flags.host, port: flags.port, user: flags.user, dbname: flags.dbname },
    });
    this.log(`backup ${b.id} ${b.status}: ${b.mode}, ${b.dataBytes} bytes of data, ${b.storedBytes} stored, LSN ${formatLsn(b.startLsn)} - ${b.stopLsn === null ? '?' : formatLsn(b.stopLsn)}`);
  }
}
