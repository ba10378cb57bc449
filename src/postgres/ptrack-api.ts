/**
 * The ptrack 2.x extension's SQL API (see docs/postgres-internals.md, "Server-side change maps"):
 * its version, since when it tracks, and its per-segment change bitmaps (where it is installed:
 * change-sources.ts).
 *
 * The functions are called qualified by the extension's own schema (pg_extension.extnamespace),
 * so that neither search_path nor an object of the same name elsewhere can stand in for them.
 */
import { parseLsn, formatLsn, type Lsn } from '../core/lsn.js';
import type { BackupSession } from './backup-session.js';
import { queryInBatches } from './query-cursor.js';

/** One row of ptrack_get_pagemapset: a relation segment file and its bitmap (LSB first). */
export interface PtrackSegmentRow {
  /** Relative to PGDATA, e.g. base/16384/2674.1. */
  path: string;
  pagemap: Buffer | null;
}

/** ~16 KiB bitmaps at most per row (a full 1 GiB segment): a few MiB per batch at worst. */
const ROWS_PER_BATCH = 128;

export async function ptrackVersion(session: BackupSession, schema: string): Promise<string> {
  const r = await session.query<{ version: string }>(`SELECT ${schema}.ptrack_version()::text AS version`, [], 'reading ptrack_version()');
  return r[0]?.version ?? '';
}

/** The LSN since which ptrack vouches for every change; 0/0 when tracking is off. */
export async function ptrackInitLsn(session: BackupSession, schema: string): Promise<Lsn> {
  const r = await session.query<{ lsn: string | null }>(`SELECT ${schema}.ptrack_init_lsn()::text AS lsn`, [], 'reading ptrack_init_lsn()');
  const text = r[0]?.lsn;
  return text ? parseLsn(text) : 0n;
}

/** Every relation segment changed since `since`, in batches. */
export function ptrackPagemapset(session: BackupSession, schema: string, since: Lsn): AsyncGenerator<PtrackSegmentRow[]> {
  return queryInBatches<PtrackSegmentRow>(
    session,
    `SELECT path::text AS path, pagemap FROM ${schema}.ptrack_get_pagemapset($1::pg_lsn)`,
    [formatLsn(since)],
    ROWS_PER_BATCH,
    'reading the ptrack change map (ptrack_get_pagemapset)',
  );
}
