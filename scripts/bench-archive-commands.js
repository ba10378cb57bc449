#!/usr/bin/env node
// `node scripts/bench-archive-commands.js [--runs 15] [other/bin/run.js ...]`
//
// What one archive_command or restore_command run costs: PostgreSQL starts one per WAL file, so
// its start-up is paid per segment, when archiving and when recovery replays from the archive.
// A throwaway PostgreSQL 15 cluster writes one segment (1 MB of WAL messages, then a switch),
// archived with zstd; then, as the postgres OS user, alternating:
//   - archive-get of it into a new file (restore_command);
//   - archive-push of it again (archive_command after a crash: hashed, found already archived);
//   - archive-push of it under a new name (hashed, compressed, stored durably), pgkeep only;
// for this checkout's bin/run.js, each other bin/run.js given (an A/B against another build), and
// `pgbackrest archive-get` / `archive-push` (zstd) when pgBackRest is installed or can be.
// Prints the median and the fastest, in milliseconds of wall clock. `node -e 0` is the floor.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/measure.js';
import { extraCaCertsNote, withoutExtraCaCerts } from './lib/node-env.js';
import { PgkeepRepo, pgkeepBin } from './lib/pgkeep.js';
import { PgbackrestRepo, ensurePgbackrest } from './lib/pgbackrest.js';
import { postgresOsUser, runAsPostgres, ThrowawayCluster } from './lib/throwaway-cluster.js';

withoutExtraCaCerts();
const { values: opts, positionals } = parseArgs({ options: { runs: { type: 'string', default: '15' } }, allowPositionals: true });
const runs = Number(opts.runs);
const c = ThrowawayCluster.create({ major: 15, port: 55493 });
try {
  c.start();
  const pk = new PgkeepRepo(c);
  pk.setUp();
  pk.run(['set-config', '--instance', 'b', '--compress-algorithm', 'zstd']);
  await c.query("SELECT pg_logical_emit_message(false, 'bench', repeat('x', 1000000))");
  const [{ f: seg }] = await c.query('SELECT pg_walfile_name(pg_switch_wal()) AS f');
  // A copy outside pg_wal: the server may recycle the segment, and no batch may take pg_wal's others.
  // Named as the segment: pgBackRest names what it stores after the file pushed.
  const segCopy = join(c.work, 'wal', seg);
  runAsPostgres('mkdir', [join(c.work, 'wal')]);
  runAsPostgres('cp', [join(c.pgdata, 'pg_wal', seg), segCopy]);
  pk.run(['archive-push', '--instance', 'b', '--wal-file-path', segCopy, '--wal-file-name', seg]);

  const peer = ensurePgbackrest();
  let pgbr;
  if (peer.version) {
    pgbr = new PgbackrestRepo(c);
    pgbr.stanzaCreate();
    runAsPostgres('pgbackrest', pgbr.args('--compress-type=zst', 'archive-push', segCopy));
  }

  const user = postgresOsUser() ?? {};
  const timed = (cmd, args, env = {}) => {
    const t = performance.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, ...user });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    return ms;
  };
  const out = join(c.work, 'got');
  runAsPostgres('touch', [out]);
  const rows = [];
  const row = (label, once) => {
    const r = { label, ms: [], once };
    rows.push(r);
    return r;
  };
  row('node -e 0 (the floor)', () => timed(process.execPath, ['-e', '0']));
  let fresh = 0;
  for (const bin of [pgkeepBin, ...positionals]) {
    const pgkeep = (args) => timed(process.execPath, [bin, ...args], { PGKEEP_REPO: pk.root });
    row(`${bin} archive-get`, () => {
      rmSync(out, { force: true });
      return pgkeep(['archive-get', '--instance', 'b', '--wal-file-path', out, '--wal-file-name', seg]);
    });
    row(`${bin} archive-push, already archived`, () => pgkeep(['archive-push', '--instance', 'b', '--wal-file-path', segCopy, '--wal-file-name', seg]));
    row(`${bin} archive-push, new name`, () => pgkeep(['archive-push', '--instance', 'b', '--wal-file-path', segCopy, '--wal-file-name', `0000000A${String(++fresh).padStart(16, '0')}`]));
  }
  if (pgbr) {
    row(`pgbackrest ${peer.version} archive-get`, () => {
      rmSync(out, { force: true });
      return timed('pgbackrest', pgbr.args('archive-get', seg, out));
    });
    row(`pgbackrest ${peer.version} archive-push, already archived`, () => timed('pgbackrest', pgbr.args('--compress-type=zst', 'archive-push', segCopy)));
  }
  for (let i = 0; i < runs; i++) for (const r of rows) r.ms.push(r.once());

  console.log(`one WAL segment (16 MB, zstd), ${runs} alternating runs each, ms of wall clock`);
  const note = extraCaCertsNote();
  if (note) console.log(note);
  if (!pgbr) console.log(`pgBackRest left out: ${peer.skip}`);
  console.log('| command | median | fastest |');
  console.log('|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.label} | ${median(r.ms).toFixed(1)} | ${Math.min(...r.ms).toFixed(1)} |`);
} finally {
  try {
    c.stop('immediate');
  } catch {
    /* not running */
  }
  c.destroy();
}
