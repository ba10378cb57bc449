/**
 * restore_command: copy one file from the archive to where PostgreSQL asks (%p), verifying its
 * checksum on the way. A file the archive does not hold is reported as missing (the command
 * exits 1 quietly): recovery asks for files past the end of the archive and must end cleanly.
 * The file appears under its final name only once complete (temporary name, then rename).
 *
 * With a prefetch depth (wal-prefetch.ts), a segment a background filler already fetched is
 * renamed into place instead, and the filler is started again when few are left ahead.
 */
import { isAbsolute, resolve } from 'node:path';
import { debugLine } from '../../debug.js';
import { statArchivedWal } from '../../repository/wal-archive.js';
import type { ArchiveContext } from './archive-context.js';
import { copyArchivedWal } from './copy-archived-wal.js';
import { markServed, takePrefetched, tendPrefetch, type PrefetchStarter } from './wal-prefetch.js';

export interface PrefetchRequest {
  depth: number;
  /** Starts the background filler (a detached pgkeep process). */
  start: PrefetchStarter;
}

export async function archiveGet(ctx: ArchiveContext, walName: string, destPath: string, prefetch?: PrefetchRequest): Promise<boolean> {
  const info = await statArchivedWal(ctx.store, ctx.instance.name, walName);
  if (!info) return false;
  const dest = isAbsolute(destPath) ? destPath : resolve(process.cwd(), destPath);
  if (prefetch) await markServed(walName, dest);
  const served = prefetch !== undefined && (await takePrefetched(info, dest));
  if (!served) await copyArchivedWal(ctx, info, dest, `${dest}.pgkeep-${process.pid}.tmp`);
  if (prefetch) debugLine(`${walName} ${served ? 'from the prefetch directory' : 'from the archive'}`);
  if (prefetch) await tendPrefetch(ctx, walName, dest, prefetch.depth, prefetch.start);
  return true;
}
