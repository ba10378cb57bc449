import { Flags } from '@oclif/core';
import { mergeBackup } from '../app/merge/merge-backup.js';
import { BaseCommand, progressFlag, repoFlag, threadsFlag, waitFlag } from '../cli/base-command.js';
import { shortList } from '../cli/short-list.js';

export default class Merge extends BaseCommand {
  static override summary = 'Fold an incremental backup\'s chain into it, making it a FULL backup';
  static override description = 'Crash-safe and resumable: if interrupted, run the same command again. Until the merge commits, the chain is untouched and restores as before. Files that no increment changed are linked, not rewritten.';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    wait: waitFlag,
    'backup-id': Flags.string({ char: 'i', required: true, description: 'the incremental backup to merge into', helpValue: 'ID' }),
    threads: threadsFlag,
    progress: progressFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Merge);
    const ctx = await this.openRepo(flags['backup-path']);
    const meter = this.openMeter(flags.progress);
    const r = await mergeBackup(ctx, flags.instance, flags['backup-id'], flags.threads, flags.wait, meter);
    meter.count({ read: r.bytesRead, written: r.bytesWritten, stored: r.backup.storedBytes });
    this.reportFigures(meter.figures());
    if (r.alreadyMerged) {
      this.log(`backup ${r.backup.id} is already merged (FULL, ${r.backup.status}): nothing to do`);
      return;
    }
    this.log(`backup ${r.backup.id} is now FULL (${r.backup.status}): merged ${shortList(r.merged, ', ', 'backups') || 'nothing'}; ${r.filesLinked} files linked, ${r.filesRebuilt} rebuilt`);
    if (r.deleted.length) this.log(`deleted ${shortList(r.deleted, ', ', 'backups')}`);
    if (r.kept.length) this.log(`kept ${shortList(r.kept, ', ', 'backups')}: other backups still depend on them`);
  }
}
