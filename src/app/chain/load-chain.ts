/**
 * Reads what a chain needs from the repository: the records (from the catalog) and every
 * member's manifest, one at a time, handed to core/file-plan.ts's ChainPlanner, which says
 * where each file's bytes are. Only the target's manifest is kept whole.
 */
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { resolveChain } from '../../core/chain.js';
import { ChainPlanner, type FilePlan } from '../../core/file-plan.js';
import { readManifest } from '../../repository/manifest.js';
import type { RepoContext } from '../repo-context.js';

export interface LoadedChain {
  /** Newest first: the target, its parents, the FULL backup. */
  members: readonly BackupRecord[];
  /** The target's manifest entries, in path order. */
  targetFiles: FileEntry[];
  /** Where the bytes of one of targetFiles come from; throws BACKUP_CORRUPT when the chain cannot give them. */
  plan(entry: FileEntry): FilePlan;
}

export async function loadChain(ctx: RepoContext, target: BackupRecord): Promise<LoadedChain> {
  const records = resolveChain(target, (id) => ctx.catalog.getBackup(target.instance, id));
  const planner = new ChainPlanner();
  let targetFiles: FileEntry[] = [];
  for (const b of records) {
    const m = await readManifest(ctx.store, b.instance, b.id, b.generation);
    if (b === target) targetFiles = m.files;
    planner.add(b, m.files);
  }
  return chainOf(planner, targetFiles);
}

/** The LoadedChain of a planner the caller has handed every member to. */
export function chainOf(planner: ChainPlanner, targetFiles: FileEntry[]): LoadedChain {
  planner.finish();
  return { members: planner.members, targetFiles, plan: (e) => planner.plan(e) };
}
