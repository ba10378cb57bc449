// Checks of "the restore is right" (docs/testing.md) that run through SQL on a live server.
// Written against a query function so they do not care how the cluster was started.

/** Runs one statement in `database` on a short-lived connection. */
export type QueryFn = <T>(sql: string, params?: unknown[], database?: string) => Promise<T[]>;

export interface PgbenchInvariant {
  abalance: bigint;
  tbalance: bigint;
  bbalance: bigint;
  delta: bigint;
  /** sum(abalance) = sum(tbalance) = sum(bbalance) = sum(delta): each pgbench transaction moves all four together. */
  ok: boolean;
}

export async function pgbenchInvariant(query: QueryFn, database: string): Promise<PgbenchInvariant> {
  const [row] = await query<{ a: string; t: string; b: string; d: string }>(
    `SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts)::text AS a,
            (SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers)::text AS t,
            (SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches)::text AS b,
            (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text AS d`,
    [],
    database,
  );
  if (row === undefined) throw new Error('pgbench invariant query returned no row');
  const [abalance, tbalance, bbalance, delta] = [row.a, row.t, row.b, row.d].map((v) => BigInt(v)) as [
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  return { abalance, tbalance, bbalance, delta, ok: abalance === tbalance && tbalance === bbalance && bbalance === delta };
}

/** The four sums as text, for an assertion's message (JSON.stringify cannot write a bigint). */
export function invariantText(inv: PgbenchInvariant): string {
  return JSON.stringify(inv, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * "schema.table" -> "<rows>:<md5>" for every permanent user table and populated materialized
 * view. The md5 is over the sorted md5 of each row's text, so it ignores physical order (a
 * restored table may lay out rows differently after recovery) but nothing else. Unlogged
 * tables are left out: a restore legitimately empties them.
 */
export async function tableDigest(query: QueryFn, database: string): Promise<Record<string, string>> {
  const tables = await query<{ nspname: string; relname: string }>(
    `SELECT n.nspname, c.relname
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
        AND c.relpersistence = 'p'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      ORDER BY 1, 2`,
    [],
    database,
  );
  const digest: Record<string, string> = {};
  for (const { nspname, relname } of tables) {
    const [row] = await query<{ n: string; md5: string }>(
      // Hashing each row first keeps the aggregated string at 32 bytes a row, so a large
      // pgbench table stays far below the 1 GB limit of a text value.
      `SELECT count(*)::text AS n, coalesce(md5(string_agg(h, '' ORDER BY h)), '') AS md5
         FROM (SELECT md5(t::text) AS h FROM ${quoteIdent(nspname)}.${quoteIdent(relname)} t) s`,
      [],
      database,
    );
    digest[`${nspname}.${relname}`] = `${row?.n ?? '0'}:${row?.md5 ?? ''}`;
  }
  return digest;
}

/**
 * amcheck through SQL rather than pg_amcheck: Debian's pg_amcheck 15 does work against a 17
 * server, but the same SQL covers every major 13-18 with the server's own amcheck. Checks every
 * valid btree index with heapallindexed (all heap tuples are found in the index), and on 14+
 * every table with verify_heapam, including its TOAST pointers. The extension is created where
 * missing and dropped afterwards, so the checked database is left as it was.
 */
export async function amcheckDatabase(query: QueryFn, database: string, major: number): Promise<string[]> {
  const problems: string[] = [];
  const [installed] = await query<{ present: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'amcheck') AS present`,
    [],
    database,
  );
  const created = installed?.present !== true;
  if (created) await query('CREATE EXTENSION amcheck', [], database);
  try {
    const indexes = await query<{ oid: number; name: string }>(
      `SELECT c.oid::int8 AS oid, c.oid::regclass::text AS name
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
        WHERE a.amname = 'btree' AND c.relpersistence <> 't' AND i.indisvalid AND i.indisready
        ORDER BY 1`,
      [],
      database,
    );
    for (const index of indexes) {
      try {
        await query('SELECT bt_index_check($1::oid::regclass, true)', [index.oid], database);
      } catch (error) {
        problems.push(`${database}: index ${index.name}: ${(error as Error).message}`);
      }
    }
    if (major >= 14) {
      const rows = await query<{ rel: string; blkno: string; offnum: number; msg: string }>(
        `SELECT c.oid::regclass::text AS rel, v.blkno::text AS blkno, v.offnum, v.msg
           FROM pg_class c, LATERAL verify_heapam(c.oid, check_toast => c.relkind <> 't') v
          WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't'
            AND (c.relkind <> 'm' OR c.relispopulated)`,
        [],
        database,
      );
      for (const r of rows) problems.push(`${database}: table ${r.rel} block ${r.blkno} item ${r.offnum}: ${r.msg}`);
    }
  } finally {
    if (created) await query('DROP EXTENSION amcheck', [], database);
  }
  return problems;
}
