#!/usr/bin/env node
// `node scripts/bench-archive.js [--seconds 60] [--clients 4] [--scale 10] [--compress zstd] [--batch-size 1]`
//
// Does archiving keep up? A throwaway PostgreSQL 15 cluster archives through
// `pgkeep archive-push` while pgbench writes; every 5 s this samples the archive and the
// current WAL position, and prints segments written and archived and how many segments the
// archive lags behind. PostgreSQL runs archive_command as the postgres user, exactly as in
// production; with --batch-size N each run also pushes up to N - 1 waiting segments, which
// pg_stat_archiver does not count, so the archive itself is what is counted.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ThrowawayCluster, postgresOsUser, runAsPostgres } from './lib/throwaway-cluster.js';
import { extraCaCertsNote, withoutExtraCaCerts } from './lib/node-env.js';

withoutExtraCaCerts();
const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    clients: { type: 'string', default: '4' },
    scale: { type: 'string', default: '10' },
    compress: { type: 'string', default: 'zstd' },
    // pgbench's own TPC-B-like load, or bulk inserts that write WAL as fast as the server can.
    workload: { type: 'string', default: 'tpcb' },
    'batch-size': { type: 'string', default: '1' },
  },
});
const pgkeep = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'run.js');
const c = ThrowawayCluster.create({ major: 15, port: 55471 });
const repo = join(c.work, 'repo');
const archiveCommand = `"${process.execPath}" "${pgkeep}" archive-push -B "${repo}" --instance b --wal-file-path "%p" --wal-file-name "%f" --batch-size ${Number(opts['batch-size'])}`;
const run = (args) => runAsPostgres(process.execPath, [pgkeep, ...args], { env: { ...process.env, PGKEEP_REPO: repo } });

try {
  const user = postgresOsUser();
  mkdirSync(repo, { recursive: true });
  if (user) chownSync(repo, user.uid, user.gid);
  execFileSync('rmdir', [repo]);
  const conf = `\narchive_mode = on\narchive_command = '${archiveCommand.replace(/'/g, "''")}'\nmax_wal_size = '1GB'\n`;
  execFileSync('sh', ['-c', `cat >> '${c.pgdata}/postgresql.conf'`], { input: conf });
  c.start();
  run(['init']);
  run(['add-instance', '--instance', 'b', '-D', c.pgdata, ...c.connectionArgs]);
  run(['set-config', '--instance', 'b', '--compress-algorithm', opts.compress]);
  runAsPostgres('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-q', '-s', opts.scale, ...c.connectionArgs, 'postgres']);
  const sample = async () => {
    const [r] = await c.query(`SELECT archived_count, failed_count, pg_walfile_name(pg_current_wal_lsn()) AS current FROM pg_stat_archiver`);
    let segments = [];
    try {
      segments = readdirSync(join(repo, 'instances', 'b', 'wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    } catch {
      /* nothing archived yet */
    }
    return { ...r, archived: segments.length, last_archived_wal: segments.at(-1) };
  };
  const segNo = (name) => (name ? parseInt(name.slice(8, 16), 16) * 256 + parseInt(name.slice(16, 24), 16) : 0);
  const start = await sample();
  const script = join(c.work, 'bulk.sql');
  if (opts.workload === 'bulk') {
    await c.query('CREATE TABLE bulk (id int, pad text)');
    execFileSync('sh', ['-c', `cat > '${script}' && chmod 644 '${script}'`], { input: "INSERT INTO bulk SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;\n" });
  }
  const load = opts.workload === 'bulk' ? ['-f', script] : [];
  const bench = spawn('/usr/lib/postgresql/15/bin/pgbench', ['-n', ...load, '-c', opts.clients, '-j', '2', '-T', opts.seconds, ...c.connectionArgs, 'postgres'], { stdio: 'ignore', ...(user ?? {}) });
  const t0 = Date.now();
  let maxLag = 0;
  let last = start;
  const note = extraCaCertsNote();
  if (note) console.log(note);
  console.log('  t s | written | archived | lag (segments) | failed');
  while (bench.exitCode === null) {
    await new Promise((r) => setTimeout(r, 5000));
    last = await sample();
    const lag = segNo(last.current) - segNo(last.last_archived_wal) - 1;
    maxLag = Math.max(maxLag, lag);
    console.log(`${String(Math.round((Date.now() - t0) / 1000)).padStart(5)} | ${String(segNo(last.current) - segNo(start.current)).padStart(7)} | ${String(last.archived - start.archived).padStart(8)} | ${String(lag).padStart(14)} | ${last.failed_count}`);
  }
  // Let the archiver drain after the load.
  const drainStart = Date.now();
  for (let i = 0; i < 60; i++) {
    last = await sample();
    if (segNo(last.current) - segNo(last.last_archived_wal) <= 1) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const seconds = (Date.now() - t0) / 1000;
  const written = segNo(last.current) - segNo(start.current);
  const archived = last.archived - start.archived;
  const runs = Number(last.archived_count) - Number(start.archived_count);
  console.log(`\npgbench (${opts.workload}) -c ${opts.clients} for ${opts.seconds} s, scale ${opts.scale}, archive compression ${opts.compress}, --batch-size ${opts['batch-size']}`);
  console.log(`WAL segments written: ${written} (${(written / Number(opts.seconds)).toFixed(2)}/s); archived: ${archived} (${(archived / seconds).toFixed(2)}/s over ${seconds.toFixed(0)} s incl. ${((Date.now() - drainStart) / 1000).toFixed(0)} s drain) in ${runs} archive_command runs; max lag ${maxLag} segments; failures ${last.failed_count}`);
} finally {
  try {
    c.stop('immediate');
  } catch {
    /* not running */
  }
  c.destroy();
}
