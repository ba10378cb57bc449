/**
 * Reads what a chain needs from the repository: the records (from the catalog) and every
 * member's manifest, so that core/file-plan.ts can say where each file's bytes are.
 */
import type { BackupRecord } from '../../core/backup-types.js';
import { resolveChain } from '../../core/chain.js';
import { toFileMap, type ChainMember } from '../../core/file-plan.js';
import { readManifest } from '../../repository/manifest.js';
import type { RepoContext } from '../repo-context.js';

export interface LoadedChain {
  /** Newest first: the target, its parents, the FULL backup. */
  members: ChainMember[];
  /** The target's manifest entries, in path order. */
  targetFiles: import('../../core/backup-types.js').FileEntry[];
}

export async function loadChain(ctx: RepoContext, target: BackupRecord): Promise<LoadedChain> {
  const records = resolveChain(target, (id) => ctx.catalog.getBackup(target.instance, id));
  const members: ChainMember[] = [];
  let targetFiles: LoadedChain['targetFiles'] = [];
  for (const b of records) {
    const m = await readManifest(ctx.store, b.instance, b.id, b.generation);
    if (b === target) targetFiles = m.files;
    members.push({ backup: b, files: toFileMap(m.files) });
  }
  return { members, targetFiles };
}
