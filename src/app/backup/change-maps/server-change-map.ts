/**
 * PTRACK mode: which blocks changed since the parent, as the server itself tracks them. The
 * ptrack extension when it is installed in the connected database, else PostgreSQL 17+ WAL
 * summaries when summarize_wal is on; with neither, the backup is refused (DELTA works anywhere).
 */
import type { ChangeMap } from '../../../core/change-map.js';
import { PgkeepError } from '../../../errors.js';
import type { BackupSession } from '../../../postgres/backup-session.js';
import { ptrackSchema } from '../../../postgres/ptrack-api.js';
import { summarizeWalEnabled } from '../../../postgres/wal-summary-api.js';
import { ptrackChangeMap } from './ptrack-map.js';
import type { ServerChangeMapRequest } from './server-change-map-request.js';
import { walSummaryChangeMap } from './wal-summary-map.js';

export type { ServerChangeMapRequest } from './server-change-map-request.js';

export async function serverChangeMap(session: BackupSession, req: ServerChangeMapRequest): Promise<ChangeMap> {
  const schema = await ptrackSchema(session);
  if (schema !== undefined) return ptrackChangeMap(session, schema, req);
  if (session.traits.hasWalSummaries && (await summarizeWalEnabled(session))) return walSummaryChangeMap(session, req);
  const database = (await session.query<{ db: string }>('SELECT current_database() AS db', [], 'reading the database name'))[0]?.db ?? 'the database pgkeep connects to';
  const summaries = session.traits.hasWalSummaries ? 'summarize_wal is off' : `PostgreSQL ${session.identity.serverVersion} has no WAL summaries (17+)`;
  throw new PgkeepError(
    'SERVER_UNSUPPORTED',
    `PTRACK needs a change map from the server, and this one has none: no ptrack extension in database ${database}, and ${summaries}`,
    session.traits.hasWalSummaries
      ? "set summarize_wal = on (ALTER SYSTEM, then reload) and take a FULL backup, or install ptrack 2.x (shared_preload_libraries = 'ptrack', ptrack.map_size, CREATE EXTENSION ptrack); or take a DELTA backup (-b DELTA)"
      : "install ptrack 2.x (shared_preload_libraries = 'ptrack', ptrack.map_size, then CREATE EXTENSION ptrack in that database), or take a DELTA backup (-b DELTA)",
  );
}
