// The benchmark's data and changes: a pgbench database on a throwaway cluster, the ~1% change
// the incremental backups measure, and the archive_command switch between tools.
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThrowawayCluster, runAsPostgres } from './throwaway-cluster.js';

const pgbench = '/usr/lib/postgresql/15/bin/pgbench';

/**
 * A started cluster with a pgbench database of `scale`, vacuumed and checkpointed. archive_mode
 * is on (each tool's own archive_command is set while its backups run: setArchiveCommand), with
 * WAL discarded until then. Autovacuum is off so that nothing changes pages between the runs.
 */
export async function buildDatabase({ major, scale, port, settings = {} }) {
  const c = ThrowawayCluster.create({
    major,
    port,
    settings: {
      shared_buffers: '256MB',
      max_wal_size: '8GB',
      checkpoint_timeout: '30min',
      autovacuum: 'off',
      archive_mode: 'on',
      archive_command: '/bin/true',
      ...settings,
    },
  });
  c.start();
  await initPgbench(c, scale);
  return c;
}

/** (Re)creates the pgbench tables at `scale` (server-side data generation), then VACUUM, CHECKPOINT. */
export async function initPgbench(c, scale) {
  runAsPostgres(pgbench, ['-i', '-q', '-I', 'dtGvp', '-s', String(scale), ...c.connectionArgs, 'postgres']);
  await c.query('VACUUM ANALYZE');
  await c.query('CHECKPOINT');
}

/**
 * Updates `percent` % of pgbench_accounts rows with consecutive aids from `firstAid`, so about
 * that share of the table's pages (plus the pages the new row versions go to, and the primary
 * key's), then CHECKPOINT. Returns the next unchanged aid.
 */
export async function changeRows(c, scale, percent, firstAid = 1) {
  const n = Math.round((scale * 100000 * percent) / 100);
  await c.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid >= ${firstAid} AND aid < ${firstAid + n}`);
  await c.query('CHECKPOINT');
  return firstAid + n;
}

/**
 * Updates one row on every (100 / percent)-th page of pgbench_accounts, so that about `percent`
 * of its pages change, spread over the whole table as random updates spread them (and the new
 * row versions and the primary key's entries for them change other pages). Returns the rows updated.
 */
export async function changeScatteredPages(c, percent) {
  const step = Math.max(1, Math.round(100 / percent));
  const [r] = await c.query(
    'WITH one_per_page AS (SELECT DISTINCT ON (page) aid FROM (SELECT aid, (ctid::text::point)[0]::bigint AS page FROM pgbench_accounts) t ' +
      `WHERE page % ${step} = 0 ORDER BY page, aid), ` +
      'updated AS (UPDATE pgbench_accounts a SET abalance = abalance + 1 FROM one_per_page o WHERE a.aid = o.aid RETURNING 1) ' +
      'SELECT count(*)::int AS n FROM updated',
  );
  await c.query('CHECKPOINT');
  return r.n;
}

/** Points archive_command at a tool (reload, no restart) and waits until the archiver is idle. */
export async function setArchiveCommand(c, command) {
  await c.query(`ALTER SYSTEM SET archive_command = '${command.replace(/'/g, "''")}'`);
  await c.query('SELECT pg_reload_conf()');
  await waitArchiverIdle(c);
}

/** Waits (up to 5 minutes) until no segment waits in archive_status to be archived. */
export async function waitArchiverIdle(c) {
  for (let i = 0; i < 600; i++) {
    const [r] = await c.query("SELECT count(*)::int AS ready FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
    if (r.ready === 0) return;
    await sleep(500);
  }
  throw new Error('the archiver did not catch up within 5 minutes: see pg_stat_archiver');
}

export async function countAccounts(c) {
  const [r] = await c.query('SELECT count(*)::bigint AS n, sum(abalance)::bigint AS s FROM pgbench_accounts');
  return { rows: Number(r.n), balance: Number(r.s) };
}

/**
 * A benchmark's restore is real: starts the cluster restored into `pgdata` (beside source `c`),
 * throws unless its pgbench_accounts matches the source's, then stops it and removes `pgdata`.
 * Returns what it counted.
 */
export async function checkRestoredAccounts(c, pgdata) {
  const expected = await countAccounts(c);
  const restored = c.adopt(pgdata, c.port + 1);
  restored.start();
  try {
    const got = await countAccounts(restored);
    if (got.rows !== expected.rows || got.balance !== expected.balance) {
      throw new Error(`the restored cluster's pgbench_accounts differs from the source: ${JSON.stringify(got)} against ${JSON.stringify(expected)}`);
    }
    return got;
  } finally {
    restored.stop('fast');
    rmSync(pgdata, { recursive: true, force: true });
  }
}
