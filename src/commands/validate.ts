import { Flags } from '@oclif/core';
import { validateBackups } from '../app/validate/validate-many.js';
import { ExitStatus } from '../errors.js';
import { BaseCommand, repoFlag, threadsFlag } from '../cli/base-command.js';

export default class Validate extends BaseCommand {
  static override summary = 'Verify backups against their manifests without PostgreSQL';
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ description: 'only this instance', helpValue: 'NAME' }),
    'backup-id': Flags.string({ char: 'i', description: 'only this backup', helpValue: 'ID' }),
    threads: threadsFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Validate);
    const ctx = await this.openRepo(flags['backup-path']);
    const results = await validateBackups(ctx, { instance: flags.instance, backupId: flags['backup-id'], threads: flags.threads });
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
    if (failed > 0) {
      process.stderr.write(`HINT: restore from another backup, or take a new one; \`pgkeep delete -i ID\` removes a corrupt backup\n`);
      process.exitCode = ExitStatus.corrupt;
    } else if (results.length === 0) {
      this.log('no backups to validate');
    }
  }
}
