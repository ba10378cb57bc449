/**
 * restore_command: copy one file from the archive to where PostgreSQL asks (%p), verifying its
 * checksum on the way. A file the archive does not hold is reported as missing (the command
 * exits 1 quietly): recovery asks for files past the end of the archive and must end cleanly.
 * The file appears under its final name only once complete (temporary name, then rename).
 */
import { open, rename, unlink } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fromIoError } from '../../errors.js';
import { readArchivedWal, statArchivedWal } from '../../repository/wal-archive.js';
import { writeFully } from '../../storage/write-fully.js';
import type { ArchiveContext } from './archive-context.js';

export async function archiveGet(ctx: ArchiveContext, walName: string, destPath: string): Promise<boolean> {
  const info = await statArchivedWal(ctx.store, ctx.instance.name, walName);
  if (!info) return false;
  const dest = isAbsolute(destPath) ? destPath : resolve(process.cwd(), destPath);
  const temp = `${dest}.pgkeep-${process.pid}.tmp`;
  const fh = await open(temp, 'w', 0o600).catch((e: unknown) => {
    throw fromIoError(e, 'create', temp);
  });
  try {
    let written = 0;
    for await (const chunk of readArchivedWal(ctx.store, ctx.instance.name, info, { lend: true })) {
      await writeFully(fh, chunk, written);
      written += chunk.length;
    }
    await fh.sync();
    await fh.close();
    await rename(temp, dest);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw fromIoError(e, 'write', dest);
  }
  return true;
}
