import { Flags } from '@oclif/core';
import { findUnowned } from '../app/validate/find-unowned.js';
import { validateBackups } from '../app/validate/validate-many.js';
import { validateTarget } from '../app/validate/validate-target.js';
import { formatLsn } from '../core/lsn.js';
import { ExitStatus } from '../errors.js';
import { BaseCommand, progressFlag, repoFlag, threadsFlag, waitFlag } from '../cli/base-command.js';
import { recoveryRequestFromFlags, recoveryTargetFlags } from '../cli/recovery-target-flags.js';

export default class Validate extends BaseCommand {
  static override summary = 'Verify backups against their manifests without PostgreSQL, or whether a recovery target is reachable';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ description: 'only this instance', helpValue: 'NAME' }),
    'backup-id': Flags.string({ char: 'i', description: 'only this backup', helpValue: 'ID' }),
    threads: threadsFlag,
    progress: progressFlag,
    wait: waitFlag,
    'skip-block-validation': Flags.boolean({ default: false, description: 'check stored files and their checksums, but judge no page (a backup taken with --skip-block-validation never has its pages judged)' }),
    // With a target, validate checks instead that a restore could reach it.
    ...recoveryTargetFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Validate);
    const ctx = await this.openRepo(flags['backup-path']);
    const recovery = recoveryRequestFromFlags(flags);
    if (Object.values(recovery).some((v) => v !== undefined)) {
      // Unreachable: the error (and its exit status) the restore would refuse with.
      const r = await validateTarget(ctx, { instance: flags.instance, backupId: flags['backup-id'], recovery });
      const c = r.check;
      const wal = !c.archiveNeeded
        ? 'the WAL the backup carries suffices'
        : c.firstSegment === undefined
          ? 'no archived WAL is needed'
          : `WAL segments ${c.firstSegment} to ${c.lastSegment} (${c.segmentCount}, timeline${c.timelines.length > 1 ? 's' : ''} ${c.timelines.join(', ')}) are archived`;
      const stop = c.stopRecordLsn === undefined ? '' : `; replay stops at the record at ${formatLsn(c.stopRecordLsn)}`;
      this.log(`recovery target ${r.target} is reachable from backup ${r.backup.id} (${r.backup.mode}, timeline ${r.backup.timeline}, following timeline ${c.timeline}): ${wal}${stop}`);
      return;
    }
    const meter = this.openMeter(flags.progress);
    const results = await validateBackups(ctx, { instance: flags.instance, backupId: flags['backup-id'], threads: flags.threads, waitSeconds: flags.wait, progress: meter, skipBlockValidation: flags['skip-block-validation'] });
    const checked = results.reduce((n, r) => n + r.bytesChecked, 0);
    meter.count({ read: checked, stored: checked });
    this.reportFigures(meter.figures());
    let failed = 0;
    for (const r of results) {
      if (r.ok) {
        this.log(`backup ${r.backupId} is valid (${r.filesChecked} files, ${r.bytesChecked} bytes checked)`);
      } else {
        failed++;
        for (const p of r.problems) process.stderr.write(`ERROR: backup ${r.backupId}: ${p.path}: ${p.problem}\n`);
        process.stderr.write(`ERROR: backup ${r.backupId} is CORRUPT\n`);
      }
    }
    if (!flags['backup-id']) {
      // Leftovers: files no catalog row or manifest owns (a crash, a full disk, a hand-made copy).
      const unowned = await findUnowned(ctx, flags.instance);
      for (const u of unowned) this.reporter.warn(`unowned ${u.path}: ${u.reason}`);
      if (unowned.length > 0) this.reporter.warn(`${unowned.length} path(s) in the repository belong to no backup or instance: remove them once you know where they came from`);
    }
    if (failed > 0) {
      process.stderr.write(`HINT: restore from another backup, or take a new one; \`pgkeep delete -i ID\` removes a corrupt backup\n`);
      process.exitCode = ExitStatus.corrupt;
    } else if (results.length === 0) {
      this.log('no backups to validate');
    }
  }
}
