/**
 * `--delete-wal`: which archived files the backups that stay no longer need (core/retention.ts
 * decides from the archive's listing and history files), their stored sizes, and their removal.
 */
import { planWalRetention, walFilesToRemove, type RetentionBackup, type TimelineWalPlan } from '../../core/retention.js';
import { archivedWalKey } from '../../repository/wal-archive.js';
import { loadArchiveContents } from '../wal/archive-contents.js';
import type { RepoContext } from '../repo-context.js';

export interface WalRetentionResult {
  timelines: TimelineWalPlan[];
  /** Names removed (or, in a dry run, that would be), sorted. */
  files: string[];
  /** Of which plain segments (not .partial or .backup files). */
  segments: number;
  /** Bytes these files take in the repository. */
  bytes: number;
}

const SEGMENT = /^[0-9A-F]{24}$/;

export async function planWalCleanup(ctx: RepoContext, instance: string, walSegSize: number, kept: readonly RetentionBackup[], walDepth: number): Promise<WalRetentionResult> {
  const archive = await loadArchiveContents(ctx.store, instance, walSegSize);
  // Every timeline with a file in the archive, also one that holds only .partial or .backup files.
  const tlis = [...archive.names].filter((n) => !n.endsWith('.history')).map((n) => Number.parseInt(n.slice(0, 8), 16));
  const timelines = planWalRetention(kept, walDepth, tlis, archive.histories);
  const files = walFilesToRemove(archive.names, timelines, walSegSize);
  let bytes = 0;
  for (const name of files) bytes += (await ctx.store.stat(archivedWalKey(instance, name)))?.size ?? 0;
  return { timelines, files, segments: files.filter((n) => SEGMENT.test(n)).length, bytes };
}

/** Removes the planned files, oldest first, so that an interruption leaves no hole behind a kept segment. */
export async function removeWalFiles(ctx: RepoContext, instance: string, files: readonly string[]): Promise<void> {
  for (const name of files) await ctx.store.remove(archivedWalKey(instance, name));
}
