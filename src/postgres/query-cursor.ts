/**
 * Streams the rows of a query on the backup session in batches, through a server-side cursor,
 * so that a result as large as a change map of a big cluster is never held whole in memory.
 *
 * The cursor lives in a transaction of its own on the backup session: a non-exclusive backup
 * belongs to the session, not to a transaction, so BEGIN/COMMIT around the cursor leave it be.
 */
import type { BackupSession } from './backup-session.js';

const CURSOR = 'pgkeep_rows';

export async function* queryInBatches<T>(session: BackupSession, sql: string, params: unknown[], batchRows: number, doing: string): AsyncGenerator<T[]> {
  await session.query('BEGIN READ ONLY', [], doing);
  let open = true;
  try {
    await session.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`, params, doing);
    const batch = Math.max(1, Math.trunc(batchRows));
    for (;;) {
      const rows = await session.query<T>(`FETCH ${batch} FROM ${CURSOR}`, [], doing);
      if (rows.length > 0) yield rows;
      // Fewer rows than asked for: the cursor is at its end, and a FETCH more would only say so
      // (a round trip of a PTRACK backup's wait for its change map, most of whose maps fit in one batch).
      if (rows.length < batch) break;
    }
    open = false;
    await session.query('COMMIT', [], doing);
  } finally {
    // An error here, or a consumer that stopped early: end the transaction, keep the session usable.
    if (open) await session.query('ROLLBACK', [], doing).catch(() => undefined);
  }
}
