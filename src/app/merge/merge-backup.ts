/**
 * `merge -i ID`: fold the chain of ID (its parents down to the FULL backup) into ID itself,
 * which becomes a FULL backup with the same id and metadata. Crash-safe and resumable:
 *
 *   1. journal   write merge.json (the chain, the new generation); mark the target MERGING
 *   2. build     write generation N+1 of the target beside generation N: files no increment
 *                changed are hard-linked from where they are stored (never rewritten); files
 *                with page deltas are rebuilt block by block and stored whole; none of it waits
 *                for the disk: all of it is made durable at once before its manifest is written
 *   3. commit    rewrite backup.json: FULL, no parent, generation N+1 (one atomic rename)
 *   4. clean     remove generation N, then each chain member no other backup depends on
 *   5. done      remove merge.json
 *
 * Before 3 the chain is untouched, so restore works from it and a new run rebuilds step 2 from
 * scratch; after 3 the target stands alone, and a new run only finishes the clean-up.
 */
import { join } from 'node:path';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { needsReconstruction } from '../../core/file-plan.js';
import { PgkeepError } from '../../errors.js';
import { readBackupControl, writeBackupControl } from '../../repository/backup-control.js';
import { backupDataKey, backupDataPrefix, backupKey, generationKey, manifestKey } from '../../repository/layout.js';
import { storedFileKeys } from '../../repository/stored-parts.js';
import { writeManifest } from '../../repository/manifest.js';
import { StoredFileWriter } from '../../repository/stored-file.js';
import { temporaryName } from '../../storage/object-key.js';
import { PosixStore } from '../../storage/posix-store.js';
import { fileContent, sourceKey } from '../chain/file-content.js';
import { loadChain } from '../chain/load-chain.js';
import { removeBackup } from '../delete-backup.js';
import { lockInstance } from '../instance-locking.js';
import { forEachParallel } from '../../core/parallel.js';
import { silentProgress, type OperationProgress } from '../progress.js';
import { saveBackup, type RepoContext } from '../repo-context.js';
import { storedDataKeys } from '../stored-data-keys.js';
import { readMergeJournal, removeMergeJournal, writeMergeJournal, type MergeJournal } from './merge-journal.js';

export interface MergeResult {
  backup: BackupRecord;
  /** The backup was already merged (an earlier run finished): nothing was done. */
  alreadyMerged: boolean;
  merged: string[];
  deleted: string[];
  kept: string[];
  filesLinked: number;
  filesRebuilt: number;
  resumed: boolean;
  /** Stored bytes read to rebuild files, and stored bytes written for them (linked files: neither). */
  bytesRead: number;
  bytesWritten: number;
}

/** `waitSeconds`: --wait, how long to wait for the instance's lock (undefined: fail at once). */
export async function mergeBackup(ctx: RepoContext, instance: string, id: string, threads: number, waitSeconds?: number, progress: OperationProgress = silentProgress): Promise<MergeResult> {
  ctx.catalog.requireInstance(instance);
  const lock = await lockInstance(ctx, instance, 'merge', waitSeconds);
  try {
    let journal = await readMergeJournal(ctx.store, instance, id);
    const resumed = journal !== undefined;
    // The repository is the truth: after a crash the catalog may lag behind backup.json.
    let target = await readBackupControl(ctx.store, instance, id);
    ctx.catalog.upsertBackup(target);
    let counts = { linked: 0, rebuilt: 0, read: 0, written: 0 };

    // A writer killed mid-rename leaves its temporary (merge.json.tmp.*, backup.json.tmp.*).
    await ctx.store.cleanupTemporaries(backupKey(instance, id));
    if (!journal) {
      if (target.mode === 'FULL' && target.metrics?.mergedBackups !== undefined) {
        // An earlier run finished just before it was interrupted: running it again is a success.
        return { backup: target, alreadyMerged: true, merged: [], deleted: [], kept: [], filesLinked: 0, filesRebuilt: 0, resumed: false, bytesRead: 0, bytesWritten: 0 };
      }
      if (target.mode === 'FULL') throw new PgkeepError('INVALID_ARGUMENT', `backup ${id} is a FULL backup: there is nothing to merge`, 'name an incremental backup');
      if (target.status !== 'OK' && target.status !== 'DONE') {
        throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${id} is ${target.status} and cannot be merged`, 'validate it first');
      }
      // 1. journal
      const chain = await loadChain(ctx, target);
      journal = { formatVersion: 1, target: id, ancestors: chain.members.slice(1).map((b) => b.id), newGeneration: target.generation + 1, previousStatus: target.status };
      await writeMergeJournal(ctx.store, instance, journal);
      target = { ...target, status: 'MERGING' };
      await saveBackup(ctx, target);
    } else {
      ctx.reporter.info(`resuming the merge of backup ${id}`);
    }

    if (target.generation !== journal.newGeneration) {
      // 2. build (from scratch: a half-built generation from an earlier attempt is discarded),
      // 3. commit (buildGeneration ends by rewriting backup.json with the new generation)
      counts = await buildGeneration(ctx, target, journal, threads, progress);
      target = await readBackupControl(ctx.store, instance, id);
    }
    if (target.status === 'MERGING') target = { ...target, status: journal.previousStatus };
    // Always, not only when MERGING: the commit rewrote backup.json alone, and a run killed between
    // writing the journal and marking the backup MERGING leaves it OK there while the catalog row
    // still names the old parent, which would make the clean-up below keep the whole chain.
    await saveBackup(ctx, target);

    // 4. clean
    const { deleted, kept } = await cleanUp(ctx, target, journal);
    // 5. done
    await removeMergeJournal(ctx.store, instance, id);
    return { backup: target, alreadyMerged: false, merged: journal.ancestors, deleted, kept, filesLinked: counts.linked, filesRebuilt: counts.rebuilt, resumed, bytesRead: counts.read, bytesWritten: counts.written };
  } finally {
    await lock.release();
  }
}

async function buildGeneration(ctx: RepoContext, target: BackupRecord, journal: MergeJournal, threads: number, progress: OperationProgress): Promise<{ linked: number; rebuilt: number; read: number; written: number }> {
  const g = journal.newGeneration;
  await ctx.store.removeTree(generationKey(target.instance, target.id, g));
  const chain = await loadChain(ctx, target);
  if (chain.members.length - 1 !== journal.ancestors.length) {
    throw new PgkeepError('BACKUP_CORRUPT', `the chain of backup ${target.id} no longer matches the merge journal`, 'restore from another backup; inspect merge.json in the backup directory');
  }
  const entries: FileEntry[] = [];
  let linked = 0;
  let rebuilt = 0;
  let read = 0;
  let written = 0;
  // A file with more page deltas than are read at once is rebuilt through a scratch file beside
  // the new generation's files (a temporary by name: listings skip it, a rerun's removeTree and
  // cleanupTemporaries take it if a crash leaves it).
  const scratchDir = ctx.store instanceof PosixStore ? ctx.store.pathOf(generationKey(target.instance, target.id, g)) : undefined;
  let scratches = 0;
  const scratch = scratchDir === undefined ? undefined : () => join(scratchDir, temporaryName('rebuild', process.pid, (scratches++).toString(16)));
  // Links and rebuilt files are not synced one by one (each would wait for the disk): all are
  // made durable together before the manifest names them (docs/repository-format.md).
  const data = ctx.store.deferringSync();
  const withData = chain.targetFiles.filter((e) => e.storage !== 'none');
  progress.start(withData.length, withData.reduce((n, e) => n + e.size, 0), 'merge');
  await forEachParallel(chain.targetFiles, threads, async (entry) => {
    if (entry.storage === 'none') {
      entries.push(entry);
      return;
    }
    const plan = chain.plan(entry);
    const dest = backupDataKey(target.instance, target.id, entry.path, g);
    if (!needsReconstruction(plan)) {
      const src = plan.sources[0]!;
      // The stored file, or each of its parts, is linked as it is.
      const to = storedFileKeys(dest, src.entry);
      const from = storedFileKeys(sourceKey(target.instance, src), src.entry);
      for (let i = 0; i < from.length; i++) await data.link(from[i]!, to[i]!);
      // The content checksum, with the part size that says how to check it: the stored parts'
      // own when linked in parts, else the target's (or the source's when the target has none).
      const sum = src.entry.parts || entry.checksum === null ? src.entry : entry;
      const { partSize: _scheme, parts: _parts, ...rest } = entry;
      entries.push({
        ...rest,
        storage: 'full',
        storedSize: src.entry.storedSize,
        storedChecksum: src.entry.storedChecksum,
        compressAlg: src.entry.compressAlg,
        checksum: sum.checksum,
        ...(sum.partSize !== undefined ? { partSize: sum.partSize } : {}),
        ...(src.entry.parts ? { parts: src.entry.parts } : {}),
      });
      linked++;
      progress.advance(1, entry.size);
      return;
    }
    const writer = await StoredFileWriter.open(data, dest, target.compressAlg, target.compressLevel);
    try {
      for await (const chunk of fileContent(ctx.store, target.instance, plan, target.blockSize, scratch)) await writer.write(chunk);
      const r = await writer.finish();
      // Rewritten whole: a plain stored file with a plain checksum, whatever the sources were.
      const { deltaBlocks: _dropped, partSize: _partSize, parts: _parts, ...rest } = entry;
      entries.push({ ...rest, storage: 'full', size: r.size, storedSize: r.storedSize, storedChecksum: r.storedChecksum, checksum: r.checksum, compressAlg: target.compressAlg });
      rebuilt++;
      read += plan.sources.reduce((n, src) => n + src.entry.storedSize, 0);
      written += r.storedSize;
      progress.advance(1, r.size);
    } catch (e) {
      await writer.abort().catch(() => undefined);
      throw e;
    }
  });
  const merged: BackupRecord = {
    ...target,
    mode: 'FULL',
    parentId: null,
    generation: g,
    storedBytes: entries.reduce((n, e) => n + e.storedSize, 0),
    metrics: { ...(target.metrics ?? {}), mergedBackups: journal.ancestors.length, filesLinked: linked, filesRebuilt: rebuilt, mergeBytesRead: read, mergeBytesWritten: written },
    // Pages of a backup taken with --skip-block-validation may be among the merged ones.
    ...(chain.members.some((b) => b.blockValidationSkipped === true) ? { blockValidationSkipped: true as const } : {}),
  };
  await data.syncObjects(storedDataKeys(target.instance, target.id, entries, g));
  await writeManifest(ctx.store, merged, entries);
  // backup.json is the commit point; write it here, with the merged record, still MERGING.
  await writeBackupControl(ctx.store, merged);
  progress.finish();
  return { linked, rebuilt, read, written };
}

async function cleanUp(ctx: RepoContext, target: BackupRecord, journal: MergeJournal): Promise<{ deleted: string[]; kept: string[] }> {
  const instance = target.instance;
  // Older generations of the target itself.
  for (let g = 0; g < target.generation; g++) {
    if (g === 0) {
      await ctx.store.removeTree(backupDataPrefix(instance, target.id, 0));
      await ctx.store.remove(manifestKey(instance, target.id, 0));
    } else {
      await ctx.store.removeTree(generationKey(instance, target.id, g));
    }
  }
  // Chain members, newest first: each goes unless another backup still depends on it.
  const deleted: string[] = [];
  const kept: string[] = [];
  for (const ancestorId of journal.ancestors) {
    const a = ctx.catalog.getBackup(instance, ancestorId);
    if (!a) continue; // deleted by an earlier run
    const children = ctx.catalog.childrenOf(instance, ancestorId);
    if (children.length > 0) {
      kept.push(ancestorId);
      continue;
    }
    await removeBackup(ctx, a);
    deleted.push(ancestorId);
  }
  return { deleted, kept };
}
