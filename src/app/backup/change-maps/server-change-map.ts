/**
 * PTRACK mode: which blocks changed since the parent, as the server itself tracks them. The
 * ptrack extension when it is installed in the connected database, else PostgreSQL 17+ WAL
 * summaries when summarize_wal is on; with neither, the backup is refused (DELTA works anywhere).
 *
 * The source is chosen before the backup starts, so that a server without one (or a ptrack that
 * cannot vouch for the parent's interval) is refused before anything is started or recorded;
 * the map itself is read once the new start LSN is known.
 */
import type { BackupRecord } from '../../../core/backup-types.js';
import type { ChangeMap } from '../../../core/change-map.js';
import { PgkeepError } from '../../../errors.js';
import type { BackupSession } from '../../../postgres/backup-session.js';
import { ptrackSchema } from '../../../postgres/ptrack-api.js';
import { summarizeWalEnabled } from '../../../postgres/wal-summary-api.js';
import { assertPtrackCovers, ptrackChangeMap } from './ptrack-map.js';
import type { ServerChangeMapRequest } from './server-change-map-request.js';
import { walSummaryChangeMap } from './wal-summary-map.js';

export type { ServerChangeMapRequest } from './server-change-map-request.js';

export type ServerChangeSource = { kind: 'ptrack'; schema: string } | { kind: 'wal-summary' };

/** The change map this server offers for a backup whose parent is `parent`; SERVER_UNSUPPORTED or PARENT_INVALID when none will do. */
export async function chooseServerChangeSource(session: BackupSession, parent: BackupRecord): Promise<ServerChangeSource> {
  const schema = await ptrackSchema(session);
  if (schema !== undefined) {
    await assertPtrackCovers(session, schema, parent);
    return { kind: 'ptrack', schema };
  }
  if (session.traits.hasWalSummaries && (await summarizeWalEnabled(session))) return { kind: 'wal-summary' };
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

/** The blocks changed since the parent started, from the source chosen before the backup started. */
export function serverChangeMap(session: BackupSession, source: ServerChangeSource, req: ServerChangeMapRequest): Promise<ChangeMap> {
  return source.kind === 'ptrack' ? ptrackChangeMap(session, source.schema, req) : walSummaryChangeMap(session, req);
}
