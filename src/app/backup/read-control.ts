import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fromIoError } from '../../errors.js';
import { readControlFileBasics } from '../../postgres/pg-control.js';

/** System identifier recorded in a data directory's global/pg_control (decimal text). */
export async function readControlSystemIdentifier(pgdata: string): Promise<string> {
  const path = join(pgdata, 'global', 'pg_control');
  const buf = Buffer.alloc(512);
  try {
    const fh = await open(path, 'r');
    try {
      await fh.read(buf, 0, buf.length, 0);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw fromIoError(e, 'read', path);
  }
  return readControlFileBasics(buf).systemIdentifier.toString();
}
