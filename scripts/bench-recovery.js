#!/usr/bin/env node
// `node scripts/bench-recovery.js [--segments 64] [--repeat 2] [--prefetch 16]`
//
// How long recovery takes to replay WAL from the archive: restore_command runs once per segment,
// one after the other, while replay waits. A throwaway PostgreSQL 15 cluster archives through
// pgkeep (zstd) and, when pgBackRest is installed or can be, through pgBackRest
// too (zst), into two archives. A FULL backup of each is taken, then updates write --segments of
// WAL. Each backup is restored to the end of the archive, started, and timed from the start of
// the server until it has promoted; the restored table must equal the source's. Alternating:
//   - pgkeep, archive-get one segment at a time;
//   - pgkeep, archive-get --prefetch N (restore --archive-get-prefetch N);
//   - pgBackRest, archive-get one at a time, and with archive-async=y (its prefetch), N queued.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/measure.js';
import { extraCaCertsNote, withoutExtraCaCerts } from './lib/node-env.js';
import { PgkeepRepo, pgkeepBin } from './lib/pgkeep.js';
import { PgbackrestRepo, ensurePgbackrest } from './lib/pgbackrest.js';
import { runAsPostgres, ThrowawayCluster } from './lib/throwaway-cluster.js';
import { countAccounts, initPgbench, setArchiveCommand, waitArchiverIdle } from './lib/workload.js';

withoutExtraCaCerts();
const { values: opts } = parseArgs({ options: { segments: { type: 'string', default: '64' }, repeat: { type: 'string', default: '2' }, prefetch: { type: 'string', default: '16' } } });
const segments = Number(opts.segments);
const depth = Number(opts.prefetch);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const c = ThrowawayCluster.create({ major: 15, port: 55497, settings: { archive_mode: 'on', archive_command: '/bin/true', max_wal_size: '4GB' } });
try {
  c.start();
  await initPgbench(c, 10);
  const pk = new PgkeepRepo(c);
  pk.setUp();
  pk.run(['set-config', '--instance', 'b', '--compress-algorithm', 'zstd']);
  const peer = ensurePgbackrest();
  const pgbr = peer.version ? new PgbackrestRepo(c) : undefined;
  pgbr?.stanzaCreate();
  // One segment at a time into both: a --batch-size would mark segments done that the second
  // command then never sees.
  const pushes = [pk.archiveCommand];
  if (pgbr) pushes.push(`pgbackrest --config=${pgbr.config} --stanza=bench --compress-type=zst archive-push %p`);
  await setArchiveCommand(c, pushes.join(' && '));

  // The backups, before the WAL that recovery will replay; without --stream, so that each
  // restore replays its archive to the end.
  const id = /^backup ([0-9A-Z]+) /m.exec(pk.run(['backup', '--instance', 'b', '-b', 'FULL', '-j', '2']))[1];
  let label;
  if (pgbr) label = pgbr.backupFull('none').label;

  const [{ lsn: from }] = await c.query('SELECT pg_current_wal_lsn() AS lsn');
  for (let k = 0; ; k = (k + 1) % 4) {
    await c.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 4 = ${k}`);
    const [{ bytes }] = await c.query(`SELECT pg_current_wal_lsn() - '${from}'::pg_lsn AS bytes`);
    if (Number(bytes) >= segments * 16 * 1024 * 1024) break;
  }
  await c.query('SELECT pg_switch_wal()');
  await waitArchiverIdle(c);
  const [{ bytes: walBytes }] = await c.query(`SELECT pg_current_wal_lsn() - '${from}'::pg_lsn AS bytes`);
  const expected = await countAccounts(c);
  c.stop('fast');

  const variants = [
    { label: 'pgkeep archive-get', restore: (dest) => pk.run(['restore', '--instance', 'b', '-i', id, '-D', dest, '-j', '2', '--archive-mode', 'off']) },
    { label: `pgkeep archive-get --prefetch ${depth}`, restore: (dest) => pk.run(['restore', '--instance', 'b', '-i', id, '-D', dest, '-j', '2', '--archive-mode', 'off', '--archive-get-prefetch', String(depth)]) },
  ];
  if (pgbr) {
    variants.push({ label: `pgbackrest ${peer.version} archive-get`, restore: (dest) => pgbrRestore(dest, []) });
    variants.push({ label: `pgbackrest ${peer.version} archive-get, archive-async=y`, restore: (dest) => pgbrRestore(dest, [`--recovery-option=restore_command=pgbackrest --config=${pgbr.config} --stanza=bench --pg1-path=${dest} --archive-async --archive-get-queue-max=${depth * 16 * 1024 * 1024} archive-get %f "%p"`]) });
  }
  function pgbrRestore(dest, extra) {
    runAsPostgres('mkdir', ['-m', '0700', '-p', dest]);
    runAsPostgres('pgbackrest', pgbr.args(`--pg1-path=${dest}`, `--set=${label}`, '--archive-mode=off', ...extra, 'restore'));
  }

  const results = variants.map((v) => ({ ...v, seconds: [] }));
  let port = 55510;
  for (let r = 0; r < Number(opts.repeat); r++) {
    for (const v of results) {
      const dest = join(c.work, `restored-${r}-${results.indexOf(v)}`);
      v.restore(dest);
      // The throwaway cluster runs with fsync off; a recovering server fsyncs as in production
      // (each segment restored is fsynced as PostgreSQL keeps it in pg_wal, for one).
      appendFileSync(join(dest, 'postgresql.auto.conf'), "fsync = 'on'\n");
      const restored = c.adopt(dest, port++);
      const t = performance.now();
      // pg_ctl -w returns once connections are accepted: hot standby does so during recovery.
      restored.start();
      for (;;) {
        const [{ inRecovery }] = await restored.query('SELECT pg_is_in_recovery() AS "inRecovery"');
        if (!inRecovery) break;
        await sleep(20);
      }
      v.seconds.push((performance.now() - t) / 1000);
      const got = await countAccounts(restored);
      restored.stop('immediate');
      if (got.rows !== expected.rows || got.balance !== expected.balance) {
        const log = readFileSync(`${dest}.log`, 'utf8').split('\n').slice(-30).join('\n');
        throw new Error(`${v.label}: the recovered table differs from the source's: ${JSON.stringify(got)} against ${JSON.stringify(expected)}\n--- server log ---\n${log}`);
      }
      if (existsSync(join(dest, 'pg_wal', 'pgkeep-prefetch'))) v.left = readdirSync(join(dest, 'pg_wal', 'pgkeep-prefetch')).filter((e) => !e.startsWith('.')).length;
      rmSync(dest, { recursive: true, force: true });
    }
  }

  const replayed = Number(walBytes) / (16 * 1024 * 1024);
  console.log(`recovery of ${replayed.toFixed(0)} segments of WAL (pgbench updates, scale 10) from the archive, PostgreSQL 15 with fsync on, zstd, ${cpus().length} cores; ${opts.repeat} alternating runs each; ${pgkeepBin}`);
  const note = extraCaCertsNote();
  if (note) console.log(note);
  if (!pgbr) console.log(`pgBackRest left out: ${peer.skip}`);
  console.log('| restore_command | recovery, median s | fastest s | ms per segment |');
  console.log('|---|---:|---:|---:|');
  for (const v of results) {
    const m = median(v.seconds);
    console.log(`| ${v.label} | ${m.toFixed(2)} | ${Math.min(...v.seconds).toFixed(2)} | ${((m * 1000) / replayed).toFixed(1)} |`);
  }
  const left = results.filter((v) => v.left !== undefined).map((v) => `${v.label}: ${v.left}`);
  if (left.length > 0) console.log(`prefetched segments left in pg_wal/pgkeep-prefetch after promotion (archive-mode off: no archive-push removes them): ${left.join(', ')}`);
  console.log(`each recovered table equals the source's (${expected.rows} rows, balance ${expected.balance})`);
} finally {
  try {
    c.stop('immediate');
  } catch {
    /* not running */
  }
  spawnSync('pkill', ['-f', `${c.work}.*--prefetch-fill`]);
  c.destroy();
}
