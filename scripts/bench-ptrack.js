#!/usr/bin/env node
// `node scripts/bench-ptrack.js [--scale 50] [--threads 2] [--percent 1]`
//
// PTRACK against DELTA and FULL on the same data: a pgbench database of the given scale on a
// throwaway PostgreSQL 17 cluster (summarize_wal = on), a FULL backup, then an UPDATE of
// consecutive pgbench_accounts rows covering about --percent of the table's pages, a checkpoint,
// and DELTA and PTRACK (WAL summaries) backups with the FULL as parent. Prints seconds (wall
// clock of the pgkeep process), pages read, bytes stored and the change source of each.
// Backups run with --stream and --no-validate, so the time is the backup's own.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ThrowawayCluster, postgresOsUser } from './lib/throwaway-cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const pgkeep = join(here, '..', 'bin', 'run.js');
const { values: opts } = parseArgs({
  options: {
    scale: { type: 'string', default: '50' },
    threads: { type: 'string', default: '2' },
    percent: { type: 'string', default: '1' },
    port: { type: 'string', default: '55471' },
  },
});

function run(repo, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [pgkeep, ...args], { encoding: 'utf8', env: { ...process.env, PGKEEP_REPO: repo }, maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`pgkeep ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

const c = ThrowawayCluster.create({ major: 17, port: Number(opts.port), settings: { summarize_wal: 'on', autovacuum: 'off', shared_buffers: '256MB', max_wal_size: '4GB', checkpoint_timeout: '30min' } });
try {
  c.start();
  spawnSync('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-q', '-s', opts.scale, ...c.connectionArgs, 'postgres'], { stdio: 'ignore', ...(postgresOsUser() ?? {}) });
  await c.query('VACUUM ANALYZE');
  await c.query('CHECKPOINT');
  const repo = join(c.work, 'repo');
  run(repo, ['init']);
  run(repo, ['add-instance', '--instance', 'b', '-D', c.pgdata, ...c.connectionArgs]);
  const backup = (mode, parent) => {
    const m = run(repo, ['backup', '--instance', 'b', '-b', mode, '--stream', '-j', opts.threads, '--no-validate', ...(parent ? ['--parent', parent] : [])]);
    const id = /^backup ([0-9A-Z]+) /m.exec(m.stdout)[1];
    return { mode, id, seconds: m.seconds };
  };

  const full = backup('FULL');
  const [{ pages, rows }] = await c.query("SELECT pg_relation_size('pgbench_accounts') / 8192 AS pages, (SELECT count(*) FROM pgbench_accounts) AS rows");
  // Consecutive aids: their rows sit on consecutive pages (new row versions go to other pages,
  // and the primary key's pages for those aids change too).
  const changedRows = Math.round((Number(rows) * Number(opts.percent)) / 100);
  await c.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${changedRows}`);
  await c.query('CHECKPOINT');
  const delta = backup('DELTA', full.id);
  const ptrack = backup('PTRACK', full.id);

  const shown = JSON.parse(run(repo, ['show', '--instance', 'b', '--format', 'json']).stdout)[0].backups;
  const pgdataMb = Number(shown.find((b) => b.id === full.id).pgdata_bytes) / 1e6;
  console.log(`pgbench scale ${opts.scale} (PGDATA ${pgdataMb.toFixed(0)} MB, pgbench_accounts ${pages} pages), PostgreSQL 17, -j ${opts.threads}; ` +
    `UPDATE of aid <= ${changedRows} (${opts.percent}% of the rows); --stream --no-validate; stored includes the backup's WAL`);
  console.log('| mode | change source | seconds | pages read | MB read (pages) | MB stored |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const b of [full, delta, ptrack]) {
    const s = shown.find((x) => x.id === b.id);
    const read = s.metrics.pagesRead;
    console.log(`| ${b.mode} | ${s.change_source ?? '-'} | ${b.seconds.toFixed(2)} | ${read} | ${((read * 8192) / 1e6).toFixed(1)} | ${(Number(s.stored_bytes) / 1e6).toFixed(1)} |`);
  }
} finally {
  c.stop('immediate');
  c.destroy();
}
