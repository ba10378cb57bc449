/**
 * The pre-flight check of a backup: estimate what it will store (core/space-estimate.ts) and
 * compare with the free space of the repository's file system, before the server is asked to
 * start a backup, so that a repository without room costs nothing and records nothing. The data
 * directory is walked for its size only when a cheap upper bound of it does not already fit.
 */
import { readdir, realpath, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupMode, CompressAlg } from '../../core/backup-types.js';
import { formatBytes } from '../../core/byte-units.js';
import { estimateBackupSpace, FINISHED_STATUSES } from '../../core/space-estimate.js';
import { fromIoError, PgkeepError } from '../../errors.js';
import { walkPgdata } from '../../postgres/pgdata-walker.js';
import type { RepoContext } from '../repo-context.js';

export interface FreeSpaceRequest {
  instance: string;
  pgdata: string;
  mode: BackupMode;
  compressAlg: CompressAlg;
  walSegSize: number;
}

export async function checkFreeSpace(ctx: RepoContext, req: FreeSpaceRequest): Promise<void> {
  const free = await freeBytes(ctx.root);
  // The estimate learns from the newest finished backup of this mode, else the newest FULL
  // (core/space-estimate.ts): only those two are read.
  const learnFrom = { statuses: FINISHED_STATUSES, compressAlg: req.compressAlg, sized: true };
  const history = [ctx.catalog.newestBackup(req.instance, { ...learnFrom, mode: req.mode }), ctx.catalog.newestBackup(req.instance, { ...learnFrom, mode: 'FULL' })].filter((b) => b !== undefined);
  const estimateFor = (pgdataBytes: number) => estimateBackupSpace({ mode: req.mode, compressAlg: req.compressAlg, pgdataBytes, walSegSize: req.walSegSize, history });
  // The bytes in use on the file systems of the data directory and its tablespaces bound the
  // data directory's size from above: when even that fits, walking the data directory (a
  // tenth of a second per thousand files, a real share of a small incremental backup) is spared.
  const bound = await usedBytesBound(req.pgdata).catch(() => undefined);
  if (bound !== undefined && free >= estimateFor(bound).bytes) return;
  const sources = await walkPgdata(req.pgdata);
  const estimate = estimateFor(sources.reduce((n, s) => n + (s.kind === 'data' || s.kind === 'file' ? s.size : 0), 0));
  if (free < estimate.bytes) {
    throw new PgkeepError(
      'DISK_FULL',
      `the repository has ${formatBytes(free)} free, but this ${req.mode} backup needs about ${formatBytes(estimate.bytes)} (${estimate.basis})`,
      'free space in the repository (pgkeep delete --delete-expired, or a larger file system), or add --skip-space-check if you know it fits',
    );
  }
}

async function freeBytes(root: string): Promise<number> {
  const fs = await statfs(root).catch((e: unknown) => {
    throw fromIoError(e, 'inspect the file system of', root);
  });
  return Number(fs.bavail) * Number(fs.bsize);
}

/** Bytes in use on each distinct file system holding the data directory or one of its tablespaces. */
async function usedBytesBound(pgdata: string): Promise<number> {
  const places = [pgdata];
  const links = await readdir(join(pgdata, 'pg_tblspc')).catch(() => [] as string[]);
  for (const name of links) places.push(await realpath(join(pgdata, 'pg_tblspc', name)));
  const seen = new Set<number>();
  let used = 0;
  for (const p of places) {
    const { dev } = await stat(p);
    if (seen.has(dev)) continue;
    seen.add(dev);
    const fs = await statfs(p);
    used += (Number(fs.blocks) - Number(fs.bfree)) * Number(fs.bsize);
  }
  return used;
}
