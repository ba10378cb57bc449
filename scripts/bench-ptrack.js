#!/usr/bin/env node
// `node scripts/bench-ptrack.js [--scale 50] [--threads 2] [--percent 1]`
//
// PTRACK against DELTA and FULL on the same data, in detail (pages read): a pgbench database of
// the given scale on a throwaway PostgreSQL 17 cluster (summarize_wal = on), a FULL backup, then
// an UPDATE of consecutive pgbench_accounts rows covering about --percent of the table's pages, a
// checkpoint, and DELTA and PTRACK (WAL summaries) backups with the FULL as parent. Prints seconds
// (wall clock of the pgkeep process), pages read, bytes stored and the change source of each.
// Backups run with --stream and --no-validate, so the time is the backup's own. `npm run bench`
// measures the same three backups in its main table.
import { parseArgs } from 'node:util';
import { ensureGnuTime, warm } from './lib/measure.js';
import { PgkeepRepo } from './lib/pgkeep.js';
import { buildDatabase, changeRows, setArchiveCommand, waitArchiverIdle } from './lib/workload.js';

const { values: opts } = parseArgs({
  options: {
    scale: { type: 'string', default: '50' },
    threads: { type: 'string', short: 'j', default: '2' },
    percent: { type: 'string', default: '1' },
    port: { type: 'string', default: '55481' },
  },
});

ensureGnuTime();
const scale = Number(opts.scale);
const c = await buildDatabase({ major: 17, scale, port: Number(opts.port), settings: { summarize_wal: 'on' } });
try {
  const pk = new PgkeepRepo(c, { threads: opts.threads });
  pk.setUp();
  await setArchiveCommand(c, pk.archiveCommand);
  const backup = async (mode, parent) => {
    await waitArchiverIdle(c);
    warm(c.pgdata);
    return { mode, ...pk.backup(mode, { parent }) };
  };

  const full = await backup('FULL');
  const [{ pages }] = await c.query("SELECT pg_relation_size('pgbench_accounts') / 8192 AS pages");
  // Consecutive aids: their rows sit on consecutive pages (new row versions go to other pages,
  // and the primary key's pages for those aids change too).
  const next = await changeRows(c, scale, Number(opts.percent));
  const delta = await backup('DELTA', full.id);
  const ptrack = await backup('PTRACK', full.id);

  const shown = pk.backups();
  const pgdataMb = Number(shown.find((b) => b.id === full.id).pgdata_bytes) / 1e6;
  console.log(`pgbench scale ${scale} (PGDATA ${pgdataMb.toFixed(0)} MB, pgbench_accounts ${pages} pages), PostgreSQL 17, -j ${opts.threads}; ` +
    `UPDATE of aid < ${next} (${opts.percent}% of the rows); --stream --no-validate; stored includes the backup's WAL`);
  console.log('| mode | change source | seconds | peak RSS MB | pages read | MB read (pages) | MB stored |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const b of [full, delta, ptrack]) {
    const s = shown.find((x) => x.id === b.id);
    const read = s.metrics.pagesRead;
    console.log(`| ${b.mode} | ${s.change_source ?? '-'} | ${b.seconds.toFixed(2)} | ${b.rssMb.toFixed(1)} | ${read} | ${((read * 8192) / 1e6).toFixed(1)} | ${(Number(s.stored_bytes) / 1e6).toFixed(1)} |`);
  }
} finally {
  try {
    c.stop('immediate');
  } catch {
    /* not running */
  }
  c.destroy();
}
