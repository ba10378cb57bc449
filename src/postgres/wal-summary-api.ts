/**
 * PostgreSQL 17+ WAL summaries (see docs/postgres-internals.md, "Server-side change maps"): the
 * summarizer's progress, which summaries exist, and their contents aggregated per relation
 * segment on the server, so that the client receives one row per changed segment rather than
 * one per changed block.
 */
import { formatLsn, parseLsn, type Lsn } from '../core/lsn.js';
import type { BackupSession } from './backup-session.js';
import { queryInBatches } from './query-cursor.js';
import { FORK_NAMES, RELSEG_BLOCKS, type ForkName } from './relation-file.js';

export interface WalSummarizerState {
  summarizedTli: number;
  summarizedLsn: Lsn;
  pendingLsn: Lsn;
  running: boolean;
}

export interface WalSummary {
  tli: number;
  startLsn: Lsn;
  endLsn: Lsn;
}

/**
 * What the summaries say about one relation:
 *   limit    a fork was truncated, created or dropped (relNumber 0: every relation of the
 *            database in that tablespace, as CREATE/DROP DATABASE record it);
 *   blocks   blocks (relative to segment `segNo`) that were modified.
 */
export type SummaryRow =
  | { kind: 'limit'; spcOid: number; dbOid: number; relNumber: number }
  | { kind: 'blocks'; spcOid: number; dbOid: number; relNumber: number; fork: ForkName; segNo: number; blocks: number[] };

/** A few MiB per batch at worst: one full segment is 131072 block numbers. */
const ROWS_PER_BATCH = 32;

const STATE_SQL = 'SELECT summarized_tli::text AS tli, summarized_lsn::text AS summarized, pending_lsn::text AS pending, summarizer_pid AS pid';
const STATE_FROM = 'FROM pg_get_wal_summarizer_state()';

interface StateRow {
  tli: string;
  summarized: string;
  pending: string;
  pid: number | null;
}

export async function walSummarizerState(session: BackupSession): Promise<WalSummarizerState> {
  const r = await session.query<StateRow>(`${STATE_SQL} ${STATE_FROM}`, [], 'reading the WAL summarizer state');
  return decodeState(r[0]);
}

function decodeState(row: StateRow | undefined): WalSummarizerState {
  if (!row) return { summarizedTli: 0, summarizedLsn: 0n, pendingLsn: 0n, running: false };
  return { summarizedTli: Number(row.tli), summarizedLsn: parseLsn(row.summarized), pendingLsn: parseLsn(row.pending), running: row.pid !== null };
}

/*
 * The queries below order by the table's pg_lsn columns (s.start_lsn), never by a bare name: a
 * bare ORDER BY name means the output column, here the LSN as text, and text order is not LSN
 * order ('0/10000028' sorts before '0/9000028'), which once made the oldest summary look newer
 * than it was and refused a PTRACK backup its summaries could serve.
 */

/** The summarizer's progress, and where the summaries of timeline `tli` begin (undefined: there are none). */
export async function walSummaryStatus(session: BackupSession, tli: number): Promise<{ state: WalSummarizerState; oldestStart: Lsn | undefined }> {
  const r = await session.query<StateRow & { oldest_start: string | null }>(
    `${STATE_SQL}, (SELECT s.start_lsn::text FROM pg_available_wal_summaries() s WHERE s.tli = $1 ORDER BY s.start_lsn LIMIT 1) AS oldest_start ${STATE_FROM}`,
    [tli],
    'reading the WAL summarizer state and the oldest WAL summary',
  );
  const row = r[0];
  return { state: decodeState(row), oldestStart: row?.oldest_start ? parseLsn(row.oldest_start) : undefined };
}

/** The summaries of timeline `tli` that overlap [from, to), by start LSN. */
export async function walSummariesOverlapping(session: BackupSession, tli: number, from: Lsn, to: Lsn): Promise<WalSummary[]> {
  const r = await session.query<{ tli: string; start_lsn: string; end_lsn: string }>(
    `SELECT s.tli::text AS tli, s.start_lsn::text AS start_lsn, s.end_lsn::text AS end_lsn
       FROM pg_available_wal_summaries() s
      WHERE s.tli = $1 AND s.end_lsn > $2::pg_lsn AND s.start_lsn < $3::pg_lsn
      ORDER BY s.start_lsn, s.end_lsn`,
    [tli, formatLsn(from), formatLsn(to)],
    'listing the WAL summaries (pg_available_wal_summaries)',
  );
  return r.map((row) => ({ tli: Number(row.tli), startLsn: parseLsn(row.start_lsn), endLsn: parseLsn(row.end_lsn) }));
}

/*
 * The union of the summaries' contents. The summaries are read once (a CTE referenced twice is
 * materialized); relations with a limit block come back as one row each, and their blocks are
 * left out (the copy reads them whole); every other changed segment as one row with its blocks.
 */
const CONTENTS_SQL = `
WITH contents AS (
  SELECT c.reltablespace, c.reldatabase, c.relfilenode, c.relforknumber, c.relblocknumber, c.is_limit_block
    FROM unnest($2::pg_lsn[], $3::pg_lsn[]) AS s(start_lsn, end_lsn),
         LATERAL pg_wal_summary_contents($1::bigint, s.start_lsn, s.end_lsn) AS c
), limited AS (
  SELECT DISTINCT reltablespace, reldatabase, relfilenode FROM contents WHERE is_limit_block
)
SELECT reltablespace::int8::text AS spc, reldatabase::int8::text AS db, relfilenode::int8::text AS rel,
       NULL::int AS fork, NULL::int8 AS seg, NULL::text AS blocks
  FROM limited
UNION ALL
SELECT c.reltablespace::int8::text, c.reldatabase::int8::text, c.relfilenode::int8::text,
       c.relforknumber::int, (c.relblocknumber / $4)::int8, array_to_string(array_agg(DISTINCT (c.relblocknumber % $4)::int), ',')
  FROM contents c
 WHERE NOT c.is_limit_block
   AND NOT EXISTS (SELECT 1 FROM limited l
                    WHERE l.reltablespace = c.reltablespace AND l.reldatabase = c.reldatabase
                      AND (l.relfilenode = c.relfilenode OR l.relfilenode = 0))
 GROUP BY c.reltablespace, c.reldatabase, c.relfilenode, c.relforknumber, c.relblocknumber / $4`;

interface ContentsRow {
  spc: string;
  db: string;
  rel: string;
  fork: number | null;
  seg: string | null;
  /** Block numbers in the segment, ascending, comma-separated: pg parses an int[] a character at a time (5 ms for 2,000 blocks). */
  blocks: string | null;
}

/** The contents of `summaries` (all on one timeline), one row per limited relation or changed segment, in batches. */
export async function* walSummaryContents(session: BackupSession, tli: number, summaries: readonly WalSummary[]): AsyncGenerator<SummaryRow[]> {
  const batches = queryInBatches<ContentsRow>(
    session,
    CONTENTS_SQL,
    [tli, summaries.map((s) => formatLsn(s.startLsn)), summaries.map((s) => formatLsn(s.endLsn)), RELSEG_BLOCKS],
    ROWS_PER_BATCH,
    'reading the WAL summaries (pg_wal_summary_contents)',
  );
  for await (const rows of batches) yield rows.map(decodeRow);
}

function decodeRow(r: ContentsRow): SummaryRow {
  const id = { spcOid: Number(r.spc), dbOid: Number(r.db), relNumber: Number(r.rel) };
  if (r.fork === null) return { kind: 'limit', ...id };
  const fork = FORK_NAMES[r.fork];
  // A fork number pgkeep does not know cannot be placed: treat the relation as not vouched for.
  if (fork === undefined) return { kind: 'limit', ...id };
  return { kind: 'blocks', ...id, fork, segNo: Number(r.seg), blocks: r.blocks ? r.blocks.split(',').map(Number) : [] };
}
