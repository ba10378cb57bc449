/**
 * A backup without --stream relies on the WAL archive: it is only usable once every segment from
 * its start LSN to its stop LSN has been archived. pg_backup_stop switches to a new segment, so
 * the last one is handed to archive_command right away; this waits for them all, up to
 * --archive-timeout, and names the first missing segment when time runs out.
 */
import { walFileNamesBetween, type Lsn } from '../../core/lsn.js';
import { PgkeepError } from '../../errors.js';
import { statArchivedWal } from '../../repository/wal-archive.js';
import type { ByteStore } from '../../storage/byte-store.js';

export interface WaitForArchive {
  store: ByteStore;
  instance: string;
  timeline: number;
  startLsn: Lsn;
  stopLsn: Lsn;
  walSegSize: number;
  timeoutSeconds: number;
  pollMs?: number;
}

export async function waitForArchivedWal(w: WaitForArchive): Promise<string[]> {
  const names = walFileNamesBetween(w.timeline, w.startLsn, w.stopLsn - 1n, w.walSegSize);
  const deadline = Date.now() + w.timeoutSeconds * 1000;
  let i = 0;
  while (i < names.length) {
    if (await statArchivedWal(w.store, w.instance, names[i]!)) {
      i++;
      continue;
    }
    if (Date.now() >= deadline) {
      throw new PgkeepError('WAL_MISSING', `WAL segment ${names[i]} needed by the backup did not reach the archive within ${w.timeoutSeconds} s`, 'check archive_command and the server log (pg_stat_archiver), or raise --archive-timeout');
    }
    await new Promise((r) => setTimeout(r, w.pollMs ?? 250));
  }
  return names;
}
