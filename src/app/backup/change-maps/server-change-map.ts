/**
 * PTRACK mode: which blocks changed since the parent, as the server itself tracks them. The
 * ptrack extension when it is installed in the connected database, else PostgreSQL 17+ WAL
 * summaries when summarize_wal is on; with neither, the backup is refused (DELTA works anywhere).
 *
 * Asked after pg_backup_start, with the map, although which source serves could be settled
 * before: a lookup in pg_extension reads pg_statistic to plan, and may set hint bits there,
 * which with data checksums is an FPI in the WAL that the start's checkpoint then writes out.
 * Made before the start, that change falls inside the backup's interval, and the backup holds a
 * page that a DELTA backup of the same interval, taken just before, does not (the version
 * matrix's byte-for-byte comparison caught it); made after, it belongs to the next interval.
 */
import type { ChangeMap } from '../../../core/change-map.js';
import { PgkeepError } from '../../../errors.js';
import type { BackupSession } from '../../../postgres/backup-session.js';
import { readChangeSources } from '../../../postgres/change-sources.js';
import { ptrackChangeMap } from './ptrack-map.js';
import type { ServerChangeMapRequest } from './server-change-map-request.js';
import { walSummaryChangeMap } from './wal-summary-map.js';

export type { ServerChangeMapRequest } from './server-change-map-request.js';

export async function serverChangeMap(session: BackupSession, req: ServerChangeMapRequest): Promise<ChangeMap> {
  const { ptrackSchema, summarizeWal, database } = await readChangeSources(session);
  if (ptrackSchema !== undefined) return ptrackChangeMap(session, ptrackSchema, req);
  if (session.traits.hasWalSummaries && summarizeWal) return walSummaryChangeMap(session, req);
  const summaries = session.traits.hasWalSummaries ? 'summarize_wal is off' : `PostgreSQL ${session.identity.serverVersion} has no WAL summaries (17+)`;
  throw new PgkeepError(
    'SERVER_UNSUPPORTED',
    `PTRACK needs a change map from the server, and this one has none: no ptrack extension in database ${database}, and ${summaries}`,
    session.traits.hasWalSummaries
      ? "set summarize_wal = on (ALTER SYSTEM, then reload) and take a FULL backup, or install ptrack 2.x (shared_preload_libraries = 'ptrack', ptrack.map_size, CREATE EXTENSION ptrack); or take a DELTA backup (-b DELTA)"
      : "install ptrack 2.x (shared_preload_libraries = 'ptrack', ptrack.map_size, then CREATE EXTENSION ptrack in that database), or take a DELTA backup (-b DELTA)",
  );
}
