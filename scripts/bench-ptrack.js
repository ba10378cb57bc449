#!/usr/bin/env node
// `node scripts/bench-ptrack.js [--scale 50] [--threads 2] [--percent 1] [--repeat 3]`
//
// PTRACK against DELTA and FULL on the same data, in detail (pages read): a pgbench database of
// the given scale on a throwaway PostgreSQL 17 cluster (summarize_wal = on), a FULL backup, a
// PTRACK backup of no change (what any backup costs here, whatever it copies), then an UPDATE of
// consecutive pgbench_accounts rows covering about --percent of the table's pages, a
// checkpoint, and DELTA and PTRACK (WAL summaries) backups with the FULL as parent. Prints seconds
// (wall clock of the pgkeep process, median of --repeat runs; DELTA's and PTRACK's runs alternate,
// so that the machine's drift does not fall on one of them), pages read, bytes stored and the
// change source of each. DELTA and PTRACK run twice over: with the data directory in the page
// cache (as the main benchmark runs everything), and with its files dropped from the cache, as a
// database larger than memory is read; pgkeep's own files stay cached in both. Backups run with
// --stream and --no-validate, so the time is the backup's own. MB stored is the stored files' size;
// MB on disk what the backup's directory takes (zeros of uncompressed files are holes, which
// take nothing). The ratio of PTRACK to DELTA is printed as it is, and beyond the backup of no
// change: the time that follows the change. The server's floor is timed too, beside the backup
// of no change: psql doing only what any backup with its WAL asks of the server (slot, start with
// a fast checkpoint, stop, the WAL copied and fsynced: lib/peers.js), so that what is pgkeep's own
// shows, with the ratio a tool costing nothing beyond that floor and the change would reach.
// PostgreSQL 17's own full and incremental backups run over the same data and change, written
// by the server (`pg_basebackup --target=server`, sent by psql: lib/peers.js serverTargetBackup):
// an incremental backup from the same WAL summaries PTRACK reads, with no client process at all.
// Last, the cached PTRACK backup of the change is read back: its validate, and its restore (the
// FULL's files with the page deltas applied), timed with peak RSS; the restored cluster is started
// and its pgbench_accounts compared with the source's.
// Then the same change spread out: a new FULL, one row updated on every (100 / --percent)-th page
// of pgbench_accounts (about --percent of its pages, scattered as random updates scatter them),
// and DELTA and PTRACK again, cached and not, with that FULL as parent. Scattered pages are many
// short reads where consecutive ones are few long ones, and that is PTRACK's harder case.
// `npm run bench` measures the same three backups, cached, in its main table.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { readdirSync, rmSync } from 'node:fs';
import { diskBytes, ensureGnuTime, evict, medianRun, warm } from './lib/measure.js';
import { serverFloor, serverTargetBackup } from './lib/peers.js';
import { PgkeepRepo } from './lib/pgkeep.js';
import { buildDatabase, changeRows, changeScatteredPages, checkRestoredAccounts, setArchiveCommand, waitArchiverIdle } from './lib/workload.js';
import { extraCaCertsNote, withoutExtraCaCerts } from './lib/node-env.js';

withoutExtraCaCerts();

/**
 * Where each backup's time went: the time line of its median run (PGKEEP_DEBUG), as the ms each
 * step took, and the process's exit after its last step. A step a mode does not have is '-'.
 */
function printTimeline(runs) {
  // Every run's steps in order: a step one mode lacks goes after the step that precedes it where it occurs.
  const steps = [];
  for (const r of runs) {
    (r.phases ?? []).forEach(({ phase }, i, all) => {
      if (!steps.includes(phase)) steps.splice(i === 0 ? 0 : steps.indexOf(all[i - 1].phase) + 1, 0, phase);
    });
  }
  const label = (r) => `${r.mode} ${r.change === 'none' ? 'no change' : r.change}, ${r.cache === 'cached' ? 'cached' : 'not cached'}`;
  console.log('\nTime line of the median runs above (ms each step took, PGKEEP_DEBUG; a step ends at the line that names it):');
  console.log(`| step | ${runs.map(label).join(' | ')} |`);
  console.log(`|---|${runs.map(() => '---:').join('|')}|`);
  const durations = runs.map((r) => new Map((r.phases ?? []).map((p, i, all) => [p.phase, p.ms - (i > 0 ? all[i - 1].ms : 0)])));
  for (const step of steps) console.log(`| ${step} | ${durations.map((d) => (d.has(step) ? d.get(step).toFixed(1) : '-')).join(' | ')} |`);
  const exits = runs.map((r) => (r.phases?.length ? (r.seconds * 1000 - r.phases[r.phases.length - 1].ms).toFixed(1) : '-'));
  console.log(`| process exit (wall clock less the last step) | ${exits.join(' | ')} |`);
}

const { values: opts } = parseArgs({
  options: {
    scale: { type: 'string', default: '50' },
    threads: { type: 'string', short: 'j', default: '2' },
    percent: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '3' },
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
  /** Before each timed run: the archiver idle, the data directory cached or not. */
  const settle = async (cache) => {
    await waitArchiverIdle(c);
    if (cache === 'cached') warm(c.pgdata);
    else evict(c.pgdata);
  };
  const backup = async (mode, parent, cache = 'cached') => {
    await settle(cache);
    return { mode, cache, ...pk.backup(mode, { parent, timeline: true }) };
  };
  /** The median run of --repeat of `once` (async, so not measure.js's repeated()). */
  const medianOfRuns = async (once) => {
    const runs = [];
    for (let i = 0; i < Number(opts.repeat); i++) runs.push(await once());
    return { ...medianRun(runs), all: runs.map((r) => r.seconds) };
  };
  const medianOf = (mode, parent, cache) => medianOfRuns(() => backup(mode, parent, cache));
  /**
   * The median run of each of DELTA and PTRACK, their runs alternating (the order swapped every
   * round), so that the machine's drift over the minutes a series takes falls on both alike and
   * leaves their ratio alone: this machine's speed moves by a quarter within the hour.
   */
  const mediansAlternating = async (parent, cache, change) => {
    const runs = { DELTA: [], PTRACK: [] };
    for (let i = 0; i < Number(opts.repeat); i++) {
      for (const mode of i % 2 === 0 ? ['DELTA', 'PTRACK'] : ['PTRACK', 'DELTA']) runs[mode].push(await backup(mode, parent, cache));
    }
    return ['DELTA', 'PTRACK'].map((mode) => ({ ...medianRun(runs[mode]), all: runs[mode].map((r) => r.seconds), change }));
  };

  const full = await backup('FULL');
  // Nothing changed since the FULL (but a checkpoint): what any backup costs here whatever it
  // copies: start-up, server round trips, the WAL, the manifest.
  await c.query('CHECKPOINT');
  const idle = { ...(await medianOf('PTRACK', full.id, 'cached')), change: 'none' };
  const floor = await medianOfRuns(async () => {
    await settle('cached');
    const target = join(c.work, 'floor');
    const run = serverFloor(c, target);
    if (readdirSync(join(target, 'wal')).length === 0) throw new Error('the floor run copied no WAL segment');
    return run;
  });
  // PostgreSQL's own: a full backup now (before the change, as pgkeep's FULL), and incremental
  // backups from its manifest, of no change and of the change, each into a fresh directory.
  const pgFullDir = join(c.work, 'pg17-full');
  const pgIncrDir = join(c.work, 'pg17-incremental');
  const pgBackup = async (cache, incremental) => {
    await settle(cache);
    const dir = incremental ? pgIncrDir : pgFullDir;
    const run = serverTargetBackup(c, dir, incremental ? { incrementalFrom: pgFullDir } : {});
    return { ...run, onDisk: diskBytes(dir) };
  };
  const pgMode = (incremental) => `PostgreSQL 17 ${incremental ? 'incremental' : 'full'} (pg_basebackup --target=server)`;
  const pgOf = async (cache, incremental, change) => ({ mode: pgMode(incremental), cache, change, ...(await medianOfRuns(() => pgBackup(cache, incremental))) });
  const pgFull = { mode: pgMode(false), cache: 'cached', ...(await pgBackup('cached', false)) };
  pgFull.all = [pgFull.seconds];
  const pgIdle = await pgOf('cached', true, 'none');
  const [{ pages }] = await c.query("SELECT pg_relation_size('pgbench_accounts') / 8192 AS pages");
  // Consecutive aids: their rows sit on consecutive pages (new row versions go to other pages,
  // and the primary key's pages for those aids change too).
  const next = await changeRows(c, scale, Number(opts.percent));
  const rows = [{ ...full, all: [full.seconds] }, idle];
  const peerRows = [pgFull, pgIdle];
  for (const cache of ['cached', 'not cached']) {
    rows.push(...(await mediansAlternating(full.id, cache, `${opts.percent}%`)));
    peerRows.push(await pgOf(cache, true, `${opts.percent}%`));
  }

  // Reading the chain back: validate of the PTRACK backup of the change (cached), and its restore,
  // which rebuilds every changed file from the FULL and the page deltas. The restore is real:
  // the restored cluster is started and its pgbench_accounts compared with the source's.
  const ptrack = rows.find((r) => r.mode === 'PTRACK' && r.cache === 'cached' && r.change !== 'none');
  const restoredDir = join(c.work, 'restored');
  const readBack = [
    {
      what: 'validate of that PTRACK backup',
      ...(await medianOfRuns(async () => {
        await settle('cached');
        return pk.validate(ptrack.id);
      })),
    },
    {
      what: 'restore of that PTRACK backup (the FULL and its page deltas)',
      ...(await medianOfRuns(async () => {
        rmSync(restoredDir, { recursive: true, force: true });
        await settle('cached');
        return pk.restore(ptrack.id, restoredDir);
      })),
    },
  ];
  await checkRestoredAccounts(c, restoredDir);

  // The change spread over the table: a new FULL as parent, then one row on every few pages.
  const spreadFull = await backup('FULL');
  const spreadRows = await changeScatteredPages(c, Number(opts.percent));
  const spread = [];
  for (const cache of ['cached', 'not cached']) spread.push(...(await mediansAlternating(spreadFull.id, cache, `${opts.percent}% of pages, scattered`)));

  const shown = pk.backups();
  const pgdataMb = Number(shown.find((b) => b.id === full.id).pgdata_bytes) / 1e6;
  console.log(`pgbench scale ${scale} (PGDATA ${pgdataMb.toFixed(0)} MB, pgbench_accounts ${pages} pages), PostgreSQL 17, -j ${opts.threads}; ` +
    `UPDATE of aid < ${next} (${opts.percent}% of the rows); --stream --no-validate; stored includes the backup's WAL; ` +
    `DELTA and PTRACK: median of ${opts.repeat} runs each, the two alternating`);
  const header = () => {
    console.log('| mode | rows changed | PGDATA in page cache | change source | seconds | runs | peak RSS MB | pages read | MB read (pages) | MB stored | MB on disk |');
    console.log('|---|---|---|---|---:|---|---:|---:|---:|---:|---:|');
  };
  const printRow = (b) => {
    const s = shown.find((x) => x.id === b.id);
    const read = s.metrics.pagesRead;
    const onDisk = diskBytes(join(pk.root, 'instances', 'b', 'backups', b.id));
    console.log(`| ${b.mode} | ${b.change ?? '-'} | ${b.cache === 'cached' ? 'yes' : 'no'} | ${s.change_source ?? '-'} | ${b.seconds.toFixed(2)} | ${b.all.map((x) => x.toFixed(2)).join(', ')} | ${b.rssMb.toFixed(1)} | ${read} | ${((read * 8192) / 1e6).toFixed(1)} | ${(Number(s.stored_bytes) / 1e6).toFixed(1)} | ${(onDisk / 1e6).toFixed(1)} |`);
  };
  header();
  rows.forEach(printRow);
  for (const b of peerRows) {
    console.log(`| ${b.mode} | ${b.change ?? '-'} | ${b.cache === 'cached' ? 'yes' : 'no'} | ${b.change === undefined ? '-' : 'wal-summary'} | ${b.seconds.toFixed(2)} | ${b.all.map((x) => x.toFixed(2)).join(', ')} | ${b.rssMb.toFixed(1)} | - | - | ${(b.storedBytes / 1e6).toFixed(1)} | ${(b.onDisk / 1e6).toFixed(1)} |`);
  }
  console.log(`| server floor (psql: slot, pg_backup_start, pg_backup_stop, cp and fsync of the WAL) | none | yes | - | ${floor.seconds.toFixed(2)} | ${floor.all.map((x) => x.toFixed(2)).join(', ')} | ${floor.rssMb.toFixed(1)} | 0 | 0 | - | - |`);
  for (const cache of ['cached', 'not cached']) {
    const [d, p] = ['DELTA', 'PTRACK'].map((m) => rows.find((r) => r.mode === m && r.cache === cache && r.change !== 'none'));
    const [dBeyond, pBeyond] = [d, p].map((r) => r.seconds - idle.seconds);
    console.log(`PTRACK / DELTA, PGDATA ${cache}: ${(p.seconds / d.seconds).toFixed(2)} (${p.seconds.toFixed(2)} s / ${d.seconds.toFixed(2)} s); ` +
      `beyond a PTRACK backup of no change (${idle.seconds.toFixed(2)} s): ${pBeyond.toFixed(2)} s / ${dBeyond.toFixed(2)} s = ${(pBeyond / dBeyond).toFixed(2)}; ` +
      `the server floor (${floor.seconds.toFixed(2)} s) plus each: ${((floor.seconds + pBeyond) / (floor.seconds + dBeyond)).toFixed(2)}`);
    const pgIncr = peerRows.find((r) => r.cache === cache && r.change === `${opts.percent}%`);
    console.log(`PostgreSQL 17's own incremental backup of the change, PGDATA ${cache}: ${pgIncr.seconds.toFixed(2)} s, ${(pgIncr.seconds / pgFull.seconds).toFixed(2)} of its full (${pgFull.seconds.toFixed(2)} s, cached); ` +
      `pgkeep PTRACK / it: ${(p.seconds / pgIncr.seconds).toFixed(2)}`);
  }
  printTimeline([idle, ...['cached', 'not cached'].flatMap((cache) => ['DELTA', 'PTRACK'].map((m) => rows.find((r) => r.mode === m && r.cache === cache && r.change !== 'none')))]);
  console.log(`\nReading back the cached PTRACK backup of the ${opts.percent}% change (${ptrack.id}), -j ${opts.threads}, median of ${opts.repeat} runs; the restored cluster started and its pgbench_accounts matched the source's:`);
  console.log('| operation | seconds | runs | peak RSS MB |');
  console.log('|---|---:|---|---:|');
  for (const r of readBack) console.log(`| ${r.what} | ${r.seconds.toFixed(2)} | ${r.all.map((x) => x.toFixed(2)).join(', ')} | ${r.rssMb.toFixed(1)} |`);
  console.log(`pgkeep's own part of a backup of no change: ${(idle.seconds - floor.seconds).toFixed(2)} s of ${idle.seconds.toFixed(2)} s (the rest is the server floor)`);
  console.log(`\nThe change spread out: a new FULL (${spreadFull.id}, ${spreadFull.seconds.toFixed(2)} s) as parent, then one row updated on every ${Math.round(100 / Number(opts.percent))}th page of pgbench_accounts (${spreadRows} rows); median of ${opts.repeat} runs:`);
  header();
  spread.forEach(printRow);
  for (const cache of ['cached', 'not cached']) {
    const [d, p] = ['DELTA', 'PTRACK'].map((m) => spread.find((r) => r.mode === m && r.cache === cache));
    console.log(`PTRACK / DELTA of the scattered change, PGDATA ${cache}: ${(p.seconds / d.seconds).toFixed(2)} (${p.seconds.toFixed(2)} s / ${d.seconds.toFixed(2)} s)`);
  }
  printTimeline(spread);
  const note = extraCaCertsNote();
  if (note) console.log(note);
} finally {
  try {
    c.stop('immediate');
  } catch {
    /* not running */
  }
  c.destroy();
}
