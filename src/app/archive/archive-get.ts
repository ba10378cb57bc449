/**
 * Serving restore_command. The WAL archive proper (archive-push, compression, checksums) comes
 * with the archive work; until then the archive directory of an instance holds plain segment
 * copies, and a file that is not there is reported as missing so that recovery ends cleanly.
 */
import { copyFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fromIoError, PgkeepError } from '../../errors.js';
import { walArchiveKey } from '../../repository/layout.js';
import type { RepoContext } from '../repo-context.js';

const WAL_NAME = /^[0-9A-F]{24}(\.partial|\.backup|\.history)?$|^[0-9A-F]{8}\.history$/;

export async function archiveGet(ctx: RepoContext, instance: string, name: string, destPath: string): Promise<boolean> {
  ctx.catalog.requireInstance(instance);
  if (!WAL_NAME.test(name)) throw new PgkeepError('INVALID_ARGUMENT', `"${name}" is not a WAL file name`, 'pass %f as --wal-file-name');
  const key = `${walArchiveKey(instance)}/${name}`;
  if (!(await ctx.store.stat(key))) return false;
  const tmp = `${destPath}.pgkeep.tmp`;
  try {
    await copyFile(join(ctx.root, key), tmp);
    await rename(tmp, destPath);
  } catch (e) {
    throw fromIoError(e, 'write', destPath);
  }
  return true;
}
