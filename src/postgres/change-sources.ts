/**
 * Which server-side change maps the connected server offers (docs/postgres-internals.md,
 * "Server-side change maps"), asked in one round trip: the ptrack extension in this database,
 * and PostgreSQL 17+'s summarize_wal.
 */
import type { BackupSession } from './backup-session.js';

export interface ChangeSources {
  /** The ptrack extension's schema, quoted as an identifier (regnamespace output), when it is installed in this database. */
  ptrackSchema: string | undefined;
  /** summarize_wal is on (false before 17, where the setting does not exist). */
  summarizeWal: boolean;
  /** The database connected to (where ptrack would have to be installed), for messages. */
  database: string;
}

export async function readChangeSources(session: BackupSession): Promise<ChangeSources> {
  const r = await session.query<{ ptrack_schema: string | null; summarize_wal: string | null; database: string }>(
    `SELECT (SELECT extnamespace::regnamespace::text FROM pg_catalog.pg_extension WHERE extname = 'ptrack') AS ptrack_schema,
            current_setting('summarize_wal', true) AS summarize_wal,
            current_database() AS database`,
    [],
    'looking for a change map (the ptrack extension, summarize_wal)',
  );
  const row = r[0];
  return { ptrackSchema: row?.ptrack_schema ?? undefined, summarizeWal: row?.summarize_wal === 'on', database: row?.database ?? 'the database pgkeep connects to' };
}
