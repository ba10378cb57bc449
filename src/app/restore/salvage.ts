/**
 * restore --force: salvage. A CORRUPT or ORPHAN backup may be named with -i, a broken chain or
 * archive does not stop the restore, and a file that cannot be rebuilt to its checksum is left
 * out (never written wrong) and listed. Without --force, every failure here is thrown as it is.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { ChainPlanner } from '../../core/file-plan.js';
import { errorMessage, isPgkeepError, PgkeepError } from '../../errors.js';
import { readManifest } from '../../repository/manifest.js';
import { chainOf, type LoadedChain } from '../chain/load-chain.js';
import type { RepoContext } from '../repo-context.js';

/** What a --force restore left out, and why. */
export interface MissingFile {
  path: string;
  problem: string;
}

/** The failures a restore lives through under --force, and the list of what they cost. */
export class Salvage {
  readonly missing: MissingFile[] = [];

  constructor(
    readonly force: boolean,
    private readonly dest: string,
  ) {}

  /** Lists `what` as missing under --force; rethrows otherwise. */
  excuse(what: string, e: unknown): void {
    if (!this.force) throw e;
    this.list(what, e);
  }

  isMissing(path: string): boolean {
    return this.missing.some((m) => m.path === path);
  }

  /**
   * Writes a file; under --force, a file that cannot be written whole and right is removed and
   * listed instead (undefined). A full or unwritable target is no loss in the repository: it
   * stops the restore, as without --force.
   */
  async write(path: string, write: () => Promise<number>): Promise<number | undefined> {
    if (!this.force) return write();
    try {
      return await write();
    } catch (e) {
      await unlink(join(this.dest, path)).catch(() => undefined);
      if (isPgkeepError(e) && (e.code === 'DISK_FULL' || e.code === 'REPO_NOT_WRITABLE' || e.code === 'INTERRUPTED')) throw e;
      // A file written in parts may fail in several of them: listed once.
      if (!this.isMissing(path)) this.list(path, e);
      return undefined;
    }
  }

  private list(path: string, e: unknown): void {
    this.missing.push({ path, problem: errorMessage(e) });
  }
}

/** --force -i: any backup whose files were completely written, CORRUPT and ORPHAN included. */
export function salvageTarget(ctx: RepoContext, instance: string, id: string): BackupRecord {
  const b = ctx.catalog.requireBackup(instance, id);
  if (!['OK', 'DONE', 'CORRUPT', 'ORPHAN', 'MERGING'].includes(b.status)) {
    throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${b.id} is ${b.status}: it never completed, even --force has nothing to restore`, 'choose another backup (see `pgkeep show`)');
  }
  return b;
}

/**
 * --force: the chain as far as it goes, whatever the members' status. A member whose manifest
 * cannot be read, or a parent that is gone, is listed as missing; the files that needed it are
 * then listed one by one by the chain's plans. Only the target's own manifest is indispensable.
 */
export async function loadSalvageChain(ctx: RepoContext, target: BackupRecord, missing: MissingFile[]): Promise<LoadedChain> {
  const planner = new ChainPlanner();
  let targetFiles: FileEntry[] = [];
  for (let b: BackupRecord | undefined = target; b !== undefined; ) {
    let entries: FileEntry[] = [];
    try {
      entries = (await readManifest(ctx.store, b.instance, b.id, b.generation)).files;
    } catch (e) {
      if (b === target) throw e;
      missing.push({ path: `manifest of backup ${b.id}`, problem: errorMessage(e) });
    }
    if (b === target) targetFiles = entries;
    planner.add(b, entries);
    if (b.mode === 'FULL' || b.parentId === null) break;
    const parentId: string = b.parentId;
    b = ctx.catalog.getBackup(b.instance, parentId);
    if (!b) missing.push({ path: `backup ${parentId}`, problem: 'the parent is not in the catalog' });
    else if (planner.members.some((m) => m.id === parentId)) break;
  }
  return chainOf(planner, targetFiles);
}
