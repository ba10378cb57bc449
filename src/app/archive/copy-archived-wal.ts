/** Copies one file out of the WAL archive: archive-get's direct fetch, and the prefetch filler's. */
import { open, rename, unlink } from 'node:fs/promises';
import { fromIoError } from '../../errors.js';
import { readArchivedWal, type ArchivedWal } from '../../repository/wal-archive.js';
import { writeBehind } from '../restore/write-behind.js';
import type { ArchiveContext } from './archive-context.js';

/** Writes an archived file to `dest` through `temp`: complete, verified and fsynced before it has its name. */
export async function copyArchivedWal(ctx: ArchiveContext, info: ArchivedWal, dest: string, temp: string): Promise<void> {
  const fh = await open(temp, 'w', 0o600).catch((e: unknown) => {
    throw fromIoError(e, 'create', temp);
  });
  try {
    // One write in flight while the next chunk is read, decompressed and hashed, as restore writes.
    await writeBehind(fh, readArchivedWal(ctx.store, ctx.instance.name, info, { lend: true }), 0);
    await fh.sync();
    await fh.close();
    await rename(temp, dest);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw fromIoError(e, 'write', dest);
  }
}
