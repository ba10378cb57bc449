#!/usr/bin/env node
// `npm run bench -- --scale N [--threads J] [--major M] [--write]`
//
// Builds a pgbench database of scale N on a throwaway cluster and, on the same data in the same
// run, times pgkeep beside its peers: pgkeep FULL (none, zstd), validate and restore; pg_basebackup
// plain and tar+gzip; cp -a. Seconds, MB/s of the data directory and peak RSS (GNU time) go into
// one table, with each pgkeep figure as a ratio to its peer. --write saves it in
// docs/benchmarks.md with the machine description. `--scales 20,80` instead measures how pgkeep's
// FULL backup memory changes with database size.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ThrowawayCluster, postgresOsUser } from './lib/throwaway-cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const pgkeep = join(here, '..', 'bin', 'run.js');
const { values: opts } = parseArgs({
  options: {
    scale: { type: 'string', default: '20' },
    scales: { type: 'string' },
    threads: { type: 'string', default: '2' },
    major: { type: 'string', default: '15' },
    write: { type: 'boolean', default: false },
    delta: { type: 'boolean', default: false },
  },
});
const threads = opts.threads;

if (!existsSync('/usr/bin/time')) {
  console.error('GNU time is needed for peak RSS: installing it (apt-get install -y time)');
  execFileSync('apt-get', ['install', '-y', '-q', 'time'], { stdio: 'inherit' });
}

/** Runs a command under GNU time; returns seconds and peak RSS in MB. */
function measure(cmd, args, { asPostgres = false, env = {} } = {}) {
  const user = asPostgres ? postgresOsUser() : undefined;
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, ...(user ?? {}), maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  const last = r.stderr.trim().split('\n').pop();
  const [seconds, kb] = last.split(' ').map(Number);
  return { seconds, rssMb: kb / 1024, stdout: r.stdout };
}

function dirBytes(path) {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

async function buildDatabase(scale, port) {
  const c = ThrowawayCluster.create({ major: Number(opts.major), port, settings: { shared_buffers: '256MB', max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  c.start();
  const pgbench = '/usr/lib/postgresql/15/bin/pgbench';
  spawnSync(pgbench, ['-i', '-q', '-s', String(scale), ...c.connectionArgs, 'postgres'], { stdio: 'ignore', ...(postgresOsUser() ?? {}) });
  await c.query('CHECKPOINT');
  return c;
}

function pgkeepRun(repo, args) {
  return measure(process.execPath, [pgkeep, ...args], { env: { PGKEEP_REPO: repo } });
}

async function memoryByScale(scales) {
  const rows = [];
  for (const [i, scale] of scales.entries()) {
    const c = await buildDatabase(scale, 55441 + i);
    const repo = join(c.work, 'repo');
    try {
      pgkeepRun(repo, ['init']);
      pgkeepRun(repo, ['add-instance', '--instance', 'b', '-D', c.pgdata, ...c.connectionArgs]);
      const m = pgkeepRun(repo, ['backup', '--instance', 'b', '-b', 'FULL', '--stream', '-j', threads, '--no-validate']);
      rows.push({ scale, dataMb: dirBytes(c.pgdata) / 1e6, seconds: m.seconds, rssMb: m.rssMb });
    } finally {
      c.stop('immediate');
      c.destroy();
    }
  }
  const lines = ['| pgbench scale | PGDATA MB | pgkeep FULL s | peak RSS MB |', '|---:|---:|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.scale} | ${r.dataMb.toFixed(0)} | ${r.seconds.toFixed(2)} | ${r.rssMb.toFixed(1)} |`);
  const spread = (Math.max(...rows.map((r) => r.rssMb)) / Math.min(...rows.map((r) => r.rssMb)) - 1) * 100;
  lines.push('', `peak RSS differs by ${spread.toFixed(1)}% between the smallest and the largest scale`);
  return lines.join('\n');
}

async function comparePeers(scale) {
  const c = await buildDatabase(scale, 55451);
  const repo = join(c.work, 'repo');
  const out = (name) => join(c.work, name);
  const dataMb = dirBytes(c.pgdata) / 1e6;
  const rows = [];
  const add = (what, m, peer) => rows.push({ what, ...m, peer });
  try {
    pgkeepRun(repo, ['init']);
    pgkeepRun(repo, ['add-instance', '--instance', 'b', '-D', c.pgdata, ...c.connectionArgs]);
    const pgbb = '/usr/lib/postgresql/15/bin/pg_basebackup';
    add('pg_basebackup plain', measure(pgbb, ['-D', out('pgbb'), '-X', 'stream', '-c', 'fast', ...c.connectionArgs], { asPostgres: true }));
    add('pg_basebackup tar gzip', measure(pgbb, ['-D', out('pgbb-tgz'), '-Ft', '-z', '-X', 'stream', '-c', 'fast', ...c.connectionArgs], { asPostgres: true }));
    add('cp -a', measure('cp', ['-a', c.pgdata, out('cp')]));
    add('pgkeep FULL none', pgkeepRun(repo, ['backup', '--instance', 'b', '-b', 'FULL', '--stream', '-j', threads, '--no-validate']), 'pg_basebackup plain');
    add('pgkeep FULL zstd', pgkeepRun(repo, ['backup', '--instance', 'b', '-b', 'FULL', '--stream', '-j', threads, '--no-validate', '--compress-algorithm', 'zstd']), 'pg_basebackup tar gzip');
    add('pgkeep validate (zstd backup)', pgkeepRun(repo, ['validate', '--instance', 'b', '-j', threads]));
    add('pgkeep restore (zstd backup)', pgkeepRun(repo, ['restore', '--instance', 'b', '-D', out('restored'), '-j', threads]), 'cp -a');
  } finally {
    c.stop('immediate');
    for (const d of ['pgbb', 'pgbb-tgz', 'cp', 'restored']) rmSync(out(d), { recursive: true, force: true });
    c.destroy();
  }
  const lines = [
    `pgbench scale ${scale}, PGDATA ${dataMb.toFixed(0)} MB, PostgreSQL ${opts.major}, -j ${threads}, warm cache`,
    '',
    '| operation | seconds | MB/s | peak RSS MB | vs peer |',
    '|---|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const peer = r.peer ? rows.find((p) => p.what === r.peer) : undefined;
    const ratio = peer ? `${(r.seconds / peer.seconds).toFixed(2)}× the time of ${peer.what}` : '';
    lines.push(`| ${r.what} | ${r.seconds.toFixed(2)} | ${(dataMb / Math.max(r.seconds, 0.01)).toFixed(0)} | ${r.rssMb.toFixed(1)} | ${ratio} |`);
  }
  return lines.join('\n');
}

/** FULL against DELTA after changing 1% of pgbench_accounts rows, clustered and spread. */
async function deltaSizes(scale) {
  const c = await buildDatabase(scale, 55461);
  const repo = join(c.work, 'repo');
  const rows = [];
  const showBackup = () => JSON.parse(spawnSync(process.execPath, [pgkeep, 'show', '--instance', 'b', '--format', 'json'], { encoding: 'utf8', env: { ...process.env, PGKEEP_REPO: repo } }).stdout)[0].backups[0];
  const step = (what, args) => {
    const m = pgkeepRun(repo, args);
    const b = showBackup();
    rows.push({ what, seconds: m.seconds, dataMb: b.data_bytes / 1e6, storedMb: b.stored_bytes / 1e6, walMb: b.wal_bytes / 1e6, rssMb: m.rssMb });
  };
  try {
    pgkeepRun(repo, ['init']);
    pgkeepRun(repo, ['add-instance', '--instance', 'b', '-D', c.pgdata, ...c.connectionArgs]);
    step('FULL', ['backup', '--instance', 'b', '-b', 'FULL', '--stream', '-j', threads, '--no-validate']);
    const n = scale * 100000;
    await c.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${n / 100}`);
    await c.query('CHECKPOINT');
    step('DELTA after 1% of rows changed (consecutive aids)', ['backup', '--instance', 'b', '-b', 'DELTA', '--stream', '-j', threads, '--no-validate']);
    await c.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0');
    await c.query('CHECKPOINT');
    step('DELTA after 1% of rows changed (every 100th aid)', ['backup', '--instance', 'b', '-b', 'DELTA', '--stream', '-j', threads, '--no-validate']);
  } finally {
    c.stop('immediate');
    c.destroy();
  }
  const lines = [
    `pgbench scale ${scale}, PostgreSQL ${opts.major}, -j ${threads}; stored includes the backup's WAL`,
    '',
    '| backup | seconds | data MB | stored MB | of which WAL MB | peak RSS MB |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) lines.push(`| ${r.what} | ${r.seconds.toFixed(2)} | ${r.dataMb.toFixed(0)} | ${r.storedMb.toFixed(1)} | ${r.walMb.toFixed(1)} | ${r.rssMb.toFixed(1)} |`);
  lines.push('', 'With about 61 rows per page, every 100th row touches about half the pages of the table (1 - 0.99^61); consecutive rows touch about 1% of them, plus the pages the new row versions go to.');
  return lines.join('\n');
}

function machine() {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
}

const report = opts.scales
  ? await memoryByScale(opts.scales.split(',').map(Number))
  : opts.delta
    ? await deltaSizes(Number(opts.scale))
    : await comparePeers(Number(opts.scale));
const text = `Machine: ${machine()}\nDate: ${new Date().toISOString()}\nCommand: npm run bench -- ${process.argv.slice(2).join(' ')}\n\n${report}\n`;
console.log(text);
if (opts.write) {
  const file = join(here, '..', 'docs', 'benchmarks.md');
  const head = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const title = opts.scales ? 'Memory by scale' : opts.delta ? `DELTA size at scale ${opts.scale}` : `Scale ${opts.scale}`;
  writeFileSync(file, `${head.trimEnd()}\n\n## ${title}\n\n${text}`);
}
