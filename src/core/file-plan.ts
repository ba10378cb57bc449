/**
 * Where the bytes of each file of a backup come from, given its chain. Pure: the manifests are
 * read by the caller, and the plan is what restore, merge and export execute.
 *
 * For a path listed in the target backup's manifest, walk the chain newest first:
 *   full   the whole file is stored there: the last source, stop;
 *   delta  changed pages are stored there: a source, keep walking;
 *   parent unchanged in that backup: no bytes there, keep walking.
 * A data file thus resolves to zero or more deltas followed by one full base; any other file
 * to exactly one full copy. A path that a child defers to its parent but the parent does not
 * list means the chain is damaged.
 */
import type { BackupRecord, FileEntry } from './backup-types.js';
import { PgkeepError } from '../errors.js';

export interface ChainMember {
  backup: BackupRecord;
  files: ReadonlyMap<string, FileEntry>;
}

export interface FileSource {
  backupId: string;
  generation: number;
  entry: FileEntry;
}

export interface FilePlan {
  /** The target backup's entry: what the restored file must be. */
  entry: FileEntry;
  /** Newest first; the last is a 'full' source. Empty for directories and links. */
  sources: FileSource[];
}

export function planFile(entry: FileEntry, chain: readonly ChainMember[]): FilePlan {
  if (entry.storage === 'none') return { entry, sources: [] };
  const sources: FileSource[] = [];
  for (const member of chain) {
    const e = member.files.get(entry.path);
    if (!e) {
      throw new PgkeepError('BACKUP_CORRUPT', `${entry.path} is deferred to backup ${member.backup.id}, whose manifest does not list it`, 'validate the chain; restore another backup');
    }
    if (e.storage === 'delta') {
      sources.push({ backupId: member.backup.id, generation: member.backup.generation, entry: e });
    } else if (e.storage === 'full') {
      sources.push({ backupId: member.backup.id, generation: member.backup.generation, entry: e });
      return { entry, sources };
    } else if (e.storage === 'none') {
      throw new PgkeepError('BACKUP_CORRUPT', `${entry.path} changes kind along the chain at backup ${member.backup.id}`, 'validate the chain; restore another backup');
    }
  }
  const last = chain[chain.length - 1];
  throw new PgkeepError('BACKUP_CORRUPT', `no backup down to ${last?.backup.id ?? '?'} stores ${entry.path} whole`, 'validate the chain; restore another backup');
}

/** True when a plan needs block-level reconstruction (any delta among its sources). */
export function needsReconstruction(plan: FilePlan): boolean {
  return plan.sources.some((s) => s.entry.storage === 'delta');
}

export function toFileMap(files: readonly FileEntry[]): Map<string, FileEntry> {
  return new Map(files.map((f) => [f.path, f]));
}
