/**
 * `catalog rebuild`: the catalog is an index of the repository, so it can be recreated from
 * instance.json and each backup's backup.json. Backups whose backup.json cannot be read are
 * reported and skipped (validate them, or delete their directories).
 */
import { join } from 'node:path';
import { listBackupIds, readBackupControl } from '../repository/backup-control.js';
import { listInstanceConfigs } from '../repository/instance-config.js';
import type { BackupRecord } from '../core/backup-types.js';
import { setAsideDamagedCatalog } from '../catalog/catalog.js';
import { openRepositoryRoot } from '../repository/format-file.js';
import { CATALOG_FILE } from '../repository/layout.js';
import { openRepo, type RepoContext } from './repo-context.js';
import type { Reporter } from './reporter.js';
import { errorMessage } from '../errors.js';

export interface RebuildResult {
  instances: number;
  backups: number;
  skipped: string[];
}

/**
 * Opens the repository for a rebuild: a catalog that is damaged is renamed aside (kept for
 * inspection; validate lists it until it is removed) and a missing one is created.
 */
export async function openRepoForRebuild(root: string, reporter: Reporter): Promise<RepoContext> {
  await openRepositoryRoot(root);
  const aside = setAsideDamagedCatalog(join(root, CATALOG_FILE));
  if (aside) reporter.warn(`the catalog was damaged: moved it to ${aside}`);
  return openRepo(root, reporter, { recreateCatalog: true });
}

export async function rebuildCatalog(ctx: RepoContext): Promise<RebuildResult> {
  const configs = await listInstanceConfigs(ctx.store);
  const records: BackupRecord[] = [];
  const skipped: string[] = [];
  for (const cfg of configs) {
    for (const id of await listBackupIds(ctx.store, cfg.name)) {
      try {
        records.push(await readBackupControl(ctx.store, cfg.name, id));
      } catch (e) {
        skipped.push(`${cfg.name}/${id}: ${errorMessage(e)}`);
      }
    }
  }
  // Parents before children, so that references are in place as rows arrive.
  records.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  ctx.catalog.transaction(() => {
    ctx.catalog.clear();
    for (const cfg of configs) {
      ctx.catalog.insertInstance({ ...cfg, createdAt: new Date(cfg.createdAt) });
    }
    for (const r of records) ctx.catalog.upsertBackup(r);
  });
  for (const s of skipped) ctx.reporter.warn(`skipped ${s}`);
  return { instances: configs.length, backups: records.length, skipped };
}
