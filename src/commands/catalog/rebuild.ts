import { openRepoForRebuild, rebuildCatalog } from '../../app/rebuild-catalog.js';
import { BaseCommand, repoFlag } from '../../cli/base-command.js';

export default class CatalogRebuild extends BaseCommand {
  static override summary = 'Recreate the SQLite catalog from the repository';
  static override description = 'The catalog is an index of the repository; this reads every instance.json and backup.json and writes the catalog anew.';
  static override flags = { 'backup-path': repoFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(CatalogRebuild);
    const ctx = this.io.holdRepo(await openRepoForRebuild(flags['backup-path'], this.reporter));
    const r = await rebuildCatalog(ctx);
    this.log(`catalog rebuilt: ${r.instances} instance(s), ${r.backups} backup(s)${r.skipped.length ? `, ${r.skipped.length} skipped` : ''}`);
  }
}
