// The peers that need no set-up: pg_basebackup (plain, and tar with gzip) and cp -a.
import { measure, dirBytes } from './measure.js';

const pgBasebackupBin = '/usr/lib/postgresql/15/bin/pg_basebackup';

/**
 * pg_basebackup with the WAL streamed into the backup (-X stream, like pgkeep --stream), a fast
 * checkpoint, page checksums verified by the server, and its default fsync at the end.
 */
export function pgBasebackup(c, target, { tarGzip = false } = {}) {
  const m = measure(pgBasebackupBin, ['-D', target, ...(tarGzip ? ['-Ft', '-z'] : []), '-X', 'stream', '-c', 'fast', ...c.connectionArgs]);
  return { ...m, storedBytes: dirBytes(target) };
}

/** cp -a of the (running) data directory: the raw copy speed of this disk; no fsync. */
export function copyDataDirectory(c, target) {
  const m = measure('cp', ['-a', c.pgdata, target]);
  return { ...m, storedBytes: dirBytes(target) };
}
