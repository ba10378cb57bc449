import { BaseCommand, repoFlag } from '../cli/base-command.js';
import { initRepository } from '../app/init-repository.js';

export default class Init extends BaseCommand {
  static override summary = 'Create a backup repository';
  static override description = 'Creates DIR (or uses it if empty): a versioned format file, the SQLite catalog and the layout.';
  static override examples = ['<%= config.bin %> init -B /backups'];
  static override flags = { 'backup-path': repoFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(Init);
    const r = await initRepository(flags['backup-path']);
    this.log(`repository initialised at ${flags['backup-path']} (format version ${r.version}, id ${r.id})`);
  }
}
