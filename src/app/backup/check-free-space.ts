/**
 * The pre-flight check of a backup: estimate what it will store (core/space-estimate.ts) and
 * compare with the free space of the repository's file system, before the server is asked to
 * start a backup, so that a repository without room costs nothing and records nothing.
 */
import { statfs } from 'node:fs/promises';
import type { BackupMode, CompressAlg } from '../../core/backup-types.js';
import { formatBytes } from '../../core/byte-units.js';
import { estimateBackupSpace } from '../../core/space-estimate.js';
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
  const sources = await walkPgdata(req.pgdata);
  const pgdataBytes = sources.reduce((n, s) => n + (s.kind === 'data' || s.kind === 'file' ? s.size : 0), 0);
  const estimate = estimateBackupSpace({ mode: req.mode, compressAlg: req.compressAlg, pgdataBytes, walSegSize: req.walSegSize, history: ctx.catalog.listBackups(req.instance) });
  const fs = await statfs(ctx.root).catch((e: unknown) => {
    throw fromIoError(e, 'inspect the file system of', ctx.root);
  });
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free < estimate.bytes) {
    throw new PgkeepError(
      'DISK_FULL',
      `the repository has ${formatBytes(free)} free, but this ${req.mode} backup needs about ${formatBytes(estimate.bytes)} (${estimate.basis})`,
      'free space in the repository (pgkeep delete --delete-expired, or a larger file system), or add --skip-space-check if you know it fits',
    );
  }
}
