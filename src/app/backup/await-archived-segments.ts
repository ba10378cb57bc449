/**
 * Waits until the archive holds every segment a backup needs: the WAL of a backup taken without
 * --stream, or the WAL a PAGE backup reads. A gap is fatal: a backup without its WAL cannot be
 * restored, and a PAGE backup would miss the pages changed by records in the missing segment.
 *
 * PostgreSQL hands segments to archive_command in order and retries a failing one without
 * skipping it, so a segment that is missing while a later one of the same timeline is archived
 * will never arrive (it was removed, or archiving started after it): that fails at once. A
 * segment missing with nothing later archived is waited for, up to the archive timeout.
 */
import { PgkeepError } from '../../errors.js';
import { listArchivedWal, statArchivedWal } from '../../repository/wal-archive.js';
import type { ByteStore } from '../../storage/byte-store.js';

export interface AwaitSegments {
  store: ByteStore;
  instance: string;
  /** Segment file names of one timeline, ascending. */
  names: readonly string[];
  timeoutSeconds: number;
  /** Why they are needed, for the error message. */
  purpose: string;
  /** What to do about a gap, for the error's hint. */
  gapHint: string;
  /** What to do when the wait runs out, for the error's hint (default: check archiving). */
  timeoutHint?: string;
  pollMs?: number;
}

/** How often, while stalled, the archive is listed to look for later segments. */
const GAP_CHECK_MS = 5000;

export async function awaitArchivedSegments(w: AwaitSegments): Promise<void> {
  const deadline = Date.now() + w.timeoutSeconds * 1000;
  let nextGapCheck = 0;
  for (let i = 0; i < w.names.length; ) {
    const name = w.names[i]!;
    if (await statArchivedWal(w.store, w.instance, name)) {
      i++;
      nextGapCheck = 0;
      continue;
    }
    if (Date.now() >= nextGapCheck) {
      const later = await laterSegment(w, name);
      // Looked again after the listing: it may have arrived together with the later one.
      if (later !== undefined && !(await statArchivedWal(w.store, w.instance, name))) {
        throw new PgkeepError(
          'WAL_MISSING',
          `WAL segment ${name} is missing from the archive (${w.purpose}), while the later segment ${later} is archived`,
          w.gapHint,
        );
      }
      nextGapCheck = Date.now() + GAP_CHECK_MS;
    }
    if (Date.now() >= deadline) {
      throw new PgkeepError(
        'WAL_MISSING',
        `WAL segment ${name} (${w.purpose}) did not reach the archive within ${w.timeoutSeconds} s`,
        w.timeoutHint ?? 'check archive_command and the server log (pg_stat_archiver), or raise --archive-timeout',
      );
    }
    await new Promise((r) => setTimeout(r, w.pollMs ?? 250));
  }
}

/** The first archived segment of the same timeline after `name`, if any. */
async function laterSegment(w: AwaitSegments, name: string): Promise<string | undefined> {
  const tli = name.slice(0, 8);
  return (await listArchivedWal(w.store, w.instance)).find((n) => n.length === 24 && n.startsWith(tli) && n > name);
}
