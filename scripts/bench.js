#!/usr/bin/env node
// `npm run bench -- --scale N [-j 2] [--repeat R] [--no-write]`
//
// Builds a pgbench database of scale N on a throwaway PostgreSQL 15 cluster and, on the same data
// in the same run, times pgkeep beside its peers: pgkeep FULL (none, zstd), validate, restore,
// DELTA after a ~1% change and merge of that DELTA; pg_basebackup plain and tar+gzip, pgbackrest
// full (none, zst), diff after the same change, verify and restore (pgbackrest is installed from
// Debian's packages when missing), cp -a. PTRACK needs PostgreSQL 17's WAL summaries, which
// neither Debian's pg_basebackup 15 nor pgbackrest 2.45 can back up, so a second throwaway
// cluster of the same scale on PostgreSQL 17 (node_modules/pg17) times FULL, DELTA and PTRACK
// after the same ~1% change, beside PostgreSQL 17's own full and incremental backups (written by
// the server, from the same WAL summaries PTRACK reads: lib/peers.js). Each row: median seconds
// of R runs, MB/s of the data directory, peak RSS (GNU time), stored MB, and the time as a ratio
// to its peer. The table, a Targets table and the machine description go to docs/benchmarks.md
// (unless --no-write), between markers.
//
// `npm run bench -- --scales 10,50,100,200`: pgkeep FULL, restore and validate peak RSS per scale
// and per codec (zstd, none, gzip, lz4), to show memory is flat as the database grows.
// `npm run bench -- --delta --scale N`: DELTA size after 1% of rows changed, clustered or spread.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineDescription } from './lib/machine.js';
import { dirBytes, ensureGnuTime, repeated, warm } from './lib/measure.js';
import { copyDataDirectory, pgBasebackup, serverTargetBackup } from './lib/peers.js';
import { ensurePgbackrest, PgbackrestRepo } from './lib/pgbackrest.js';
import { PgkeepRepo } from './lib/pgkeep.js';
import { resultsTable, targetsTable, timeTarget, writeSection } from './lib/report.js';
import { serverBinDir } from './lib/throwaway-cluster.js';
import { buildDatabase, changeRows, checkRestoredAccounts, initPgbench, setArchiveCommand, waitArchiverIdle } from './lib/workload.js';
import { withoutExtraCaCerts } from './lib/node-env.js';

withoutExtraCaCerts();
const { values: opts } = parseArgs({
  options: {
    scale: { type: 'string', default: '10' },
    scales: { type: 'string' },
    threads: { type: 'string', short: 'j', default: '2' },
    repeat: { type: 'string', default: '1' },
    percent: { type: 'string', default: '1' },
    'no-write': { type: 'boolean', default: false },
    delta: { type: 'boolean', default: false },
  },
});
const threads = opts.threads;
const repeat = Math.max(1, Number(opts.repeat));
const docsFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'benchmarks.md');
const started = Date.now();
// The command line as the report shows it (--no-write changes nothing in the figures).
const commandLine = process.argv.slice(2).filter((a) => a !== '--no-write').join(' ');
const log = (msg) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}`);

/** Bytes backed up as data: the data directory less pg_wal. */
function dataBytes(c) {
  return dirBytes(c.pgdata) - dirBytes(join(c.pgdata, 'pg_wal'));
}

/**
 * `repeat` timed runs of `once` (synchronous), each after the cluster's archiver went idle and
 * its data directory was read into the page cache: the median measure, and every run (for ids).
 */
async function settledRuns(c, once) {
  const runs = [];
  for (let i = 0; i < repeat; i++) {
    await waitArchiverIdle(c);
    warm(c.pgdata);
    runs.push(once());
  }
  return { m: repeated(runs.length, (i) => runs[i]), runs };
}

/** settledRuns of a pgkeep backup (PgkeepRepo.backup's options): the median, and every run's id. */
async function pgkeepBackups(c, pk, mode, options) {
  const { m, runs } = await settledRuns(c, () => pk.backup(mode, options));
  return { m, ids: runs.map((r) => r.id) };
}

function stopAndDestroy(c) {
  try {
    c.stop('immediate');
  } catch {
    /* not running */
  }
  c.destroy();
}

/** PostgreSQL 17's own backups, the peers of pgkeep on 17 (lib/peers.js serverTargetBackup). */
const PG17_FULL = 'PostgreSQL 17 full (pg_basebackup --target=server)';
const pg17Incremental = (percent) => `PostgreSQL 17 incremental after ${percent}% change (pg_basebackup --target=server)`;

/**
 * The main table: PostgreSQL 15 against pg_basebackup, pgbackrest and cp -a; PTRACK on 17.
 * Returns the rows in order and, by key, the ones the targets compare.
 */
async function comparePeers(scale) {
  const pgbackrest = ensurePgbackrest();
  const percent = Number(opts.percent);
  const rows = [];
  const k = {};
  const checks = [];
  const add = (key, row) => {
    rows.push(row);
    k[key] = row;
    if (row.skip) log(`${row.what} (PostgreSQL ${row.pg}): skipped: ${row.skip}`);
    else log(`${row.what} (PostgreSQL ${row.pg}): ${row.seconds.toFixed(2)} s, ${row.rssMb.toFixed(0)} MB RSS${row.pagesRead === undefined ? '' : `, ${row.pagesRead} pages read`}`);
    return row;
  };

  log(`building a pgbench database of scale ${scale} on PostgreSQL 15`);
  const c = await buildDatabase({ major: 15, scale, port: 55451 });
  const bytes15 = dataBytes(c);
  const row15 = (what, m, peer) => ({ what, pg: 15, dataBytes: bytes15, peer, ...m });
  try {
    const out = (name) => join(c.work, name);
    const fresh = (dir) => () => {
      rmSync(out(dir), { recursive: true, force: true });
      warm(c.pgdata);
    };

    const pk = new PgkeepRepo(c, { threads });
    pk.setUp();
    const br = pgbackrest.version ? new PgbackrestRepo(c, { processMax: Number(threads) }) : undefined;
    br?.stanzaCreate();

    add('pgbb', row15('pg_basebackup plain', repeated(repeat, () => pgBasebackup(c, out('pgbb')), fresh('pgbb'))));
    add('pgbbTgz', row15('pg_basebackup tar gzip', repeated(repeat, () => pgBasebackup(c, out('pgbb-tgz'), { tarGzip: true }), fresh('pgbb-tgz'))));
    add('cp', row15('cp -a', repeated(repeat, () => copyDataDirectory(c, out('cp')), fresh('cp'))));
    for (const d of ['pgbb', 'pgbb-tgz', 'cp']) rmSync(out(d), { recursive: true, force: true });

    // Each tool's backups run while the cluster archives through that tool's own archive-push.
    let brZstLabel;
    if (br) {
      await setArchiveCommand(c, br.archiveCommand);
      // zst first: pgBackRest's diff after the change takes its latest full's compression, and
      // is compared with pgkeep's uncompressed DELTA.
      const fulls = {};
      for (const compress of ['zst', 'none']) {
        const { m, runs } = await settledRuns(c, () => br.backupFull(compress));
        fulls[compress] = m;
        if (compress === 'zst') brZstLabel = runs[runs.length - 1].label;
      }
      add('brNone', row15('pgbackrest full none', fulls.none));
      add('brZst', row15('pgbackrest full zst', fulls.zst));
      add('brVerify', row15('pgbackrest verify', repeated(repeat, () => br.verify(), () => warm(br.repoPath))));
      add('brRestore', row15('pgbackrest restore (zst)', repeated(repeat, () => br.restore(brZstLabel, out('br-restored')), () => {
        rmSync(out('br-restored'), { recursive: true, force: true });
        warm(br.repoPath);
      })));
      rmSync(out('br-restored'), { recursive: true, force: true });
    } else {
      for (const [key, what] of [['brNone', 'pgbackrest full none'], ['brZst', 'pgbackrest full zst'], ['brVerify', 'pgbackrest verify'], ['brRestore', 'pgbackrest restore (zst)']]) {
        add(key, { what, pg: 15, skip: pgbackrest.skip });
      }
    }

    await setArchiveCommand(c, pk.archiveCommand);
    const pkBackups = (mode, compress, parent) => pgkeepBackups(c, pk, mode, { compress, parent });
    const fullNone = await pkBackups('FULL', 'none');
    add('full', row15('pgkeep FULL none', fullNone.m, k.pgbb));
    const fullZstd = await pkBackups('FULL', 'zstd');
    add('fullZstd', row15('pgkeep FULL zstd', fullZstd.m, br ? k.brZst : k.pgbbTgz));
    add('validate', row15('pgkeep validate', repeated(repeat, () => pk.validate(), () => warm(pk.root)), br ? k.brVerify : undefined));
    const zstdId = fullZstd.ids[fullZstd.ids.length - 1];
    add('restore', row15('pgkeep restore (zstd)', repeated(repeat, () => pk.restore(zstdId, out('restored')), () => {
      rmSync(out('restored'), { recursive: true, force: true });
      warm(pk.root);
    }), br ? k.brRestore : k.cp));
    // The restore is real: start it and compare the data with the source's.
    const got = await checkRestoredAccounts(c, out('restored'));
    checks.push(`the cluster pgkeep restored started and its pgbench_accounts matches the source (${got.rows} rows, same sum of abalance)`);

    await changeRows(c, scale, percent);
    // pgBackRest's incremental over the same change: a differential backup against its full
    // taken before the change (the last, uncompressed), archiving through pgBackRest meanwhile.
    if (br) {
      await setArchiveCommand(c, br.archiveCommand);
      add('brDiff', row15(`pgbackrest diff none after ${percent}% change`, (await settledRuns(c, () => br.backupDiff())).m));
      await setArchiveCommand(c, pk.archiveCommand);
    } else {
      add('brDiff', { what: `pgbackrest diff none after ${percent}% change`, pg: 15, skip: pgbackrest.skip });
    }
    const delta = await pkBackups('DELTA', 'none', fullNone.ids[fullNone.ids.length - 1]);
    add('delta', row15(`pgkeep DELTA after ${percent}% change`, delta.m, br ? k.brDiff : k.full));
    add('merge', row15('pgkeep merge of the DELTA', repeated(repeat, (i) => pk.merge(delta.ids[i]), () => warm(pk.root)), k.full));
  } finally {
    stopAndDestroy(c);
  }

  // PTRACK: PostgreSQL 17 with WAL summaries, same scale, same change; its DELTA and FULL too.
  let pg17;
  try {
    pg17 = serverBinDir(17);
  } catch (e) {
    for (const [key, what] of [['pgFull17', PG17_FULL], ['full17', 'pgkeep FULL none'], ['pgIncr17', pg17Incremental(percent)], ['delta17', `pgkeep DELTA after ${percent}% change`], ['ptrack17', `pgkeep PTRACK after ${percent}% change`]]) {
      add(key, { what, pg: 17, skip: e.message });
    }
  }
  let bytes17;
  if (pg17) {
    log(`building a pgbench database of scale ${scale} on PostgreSQL 17 for PTRACK`);
    const c17 = await buildDatabase({ major: 17, scale, port: 55461, settings: { summarize_wal: 'on' } });
    try {
      bytes17 = dataBytes(c17);
      const pk = new PgkeepRepo(c17, { threads });
      pk.setUp();
      await setArchiveCommand(c17, pk.archiveCommand);
      const series = (mode, parent) => pgkeepBackups(c17, pk, mode, { parent });
      const row17 = (what, m, peer) => ({ what, pg: 17, dataBytes: bytes17, peer, ...m });
      // PostgreSQL 17's own full and incremental backups (written by the server: lib/peers.js),
      // over the same data and the same change: PTRACK's peer, from the same WAL summaries.
      const pgFullDir = join(c17.work, 'pg17-full');
      const pgIncrDir = join(c17.work, 'pg17-incremental');
      add('pgFull17', row17(PG17_FULL, (await settledRuns(c17, () => serverTargetBackup(c17, pgFullDir))).m));
      const full = await series('FULL');
      add('full17', row17('pgkeep FULL none', full.m, k.pgFull17));
      const parent = full.ids[full.ids.length - 1];
      await changeRows(c17, scale, percent);
      add('pgIncr17', row17(pg17Incremental(percent), (await settledRuns(c17, () => serverTargetBackup(c17, pgIncrDir, { incrementalFrom: pgFullDir }))).m));
      add('delta17', row17(`pgkeep DELTA after ${percent}% change`, (await series('DELTA', parent)).m, k.full17));
      add('ptrack17', row17(`pgkeep PTRACK after ${percent}% change`, (await series('PTRACK', parent)).m, k.pgIncr17));
    } finally {
      stopAndDestroy(c17);
    }
  }
  return { rows, k, checks, bytes15, bytes17, pgbackrest, pg17 };
}

function peersReport(scale, { rows, k, checks, bytes15, bytes17, pgbackrest, pg17 }) {
  const ratio = (a, b) => (a && b && !a.skip && !b.skip ? a.seconds / b.seconds : undefined);
  const percent = opts.percent;
  const pkRows = rows.filter((r) => r.what.startsWith('pgkeep') && !r.skip);
  const maxRss = Math.max(...pkRows.map((r) => r.rssMb));
  const worst = pkRows.find((r) => r.rssMb === maxRss);
  const targets = [
    timeTarget('FULL uncompressed at least as fast as pg_basebackup (plain)', ratio(k.full, k.pgbb), 1, 'pg_basebackup plain'),
    timeTarget('FULL zstd at least as fast as pgbackrest --compress-type=zst, same process-max', ratio(k.fullZstd, k.brZst), 1, 'pgbackrest full zst'),
    timeTarget('restore at least as fast as pgbackrest restore', ratio(k.restore, k.brRestore), 1, 'pgbackrest restore'),
    timeTarget(`DELTA after a ${percent}% change under 1/4 of FULL`, ratio(k.delta, k.full), 0.25, 'FULL (PostgreSQL 15)'),
    timeTarget(`DELTA after a ${percent}% change at least as fast as pgbackrest's diff over it`, ratio(k.delta, k.brDiff), 1, 'pgbackrest diff none'),
    timeTarget(`PTRACK after a ${percent}% change under 1/20 of FULL`, ratio(k.ptrack17, k.full17), 0.05, 'FULL (PostgreSQL 17)'),
    timeTarget(`PTRACK after a ${percent}% change at least as fast as PostgreSQL 17's own incremental backup over it`, ratio(k.ptrack17, k.pgIncr17), 1, 'PostgreSQL 17 incremental'),
    { target: 'peak RSS under 200 MB', measured: `${maxRss.toFixed(1)} MB at most (${worst?.what}, PostgreSQL ${worst?.pg})`, met: maxRss < 200, note: maxRss < 200 ? undefined : `${(maxRss - 200).toFixed(0)} MB over` },
    { target: 'peak RSS flat from scale 10 to 200', measured: 'see "Memory by scale"', met: undefined, note: 'measured by `--scales`' },
  ];
  const sizes = `${(bytes15 / 1e6).toFixed(0)} MB on PostgreSQL 15${bytes17 ? `, ${(bytes17 / 1e6).toFixed(0)} MB on 17` : ''}`;
  return [
    `## pgkeep against its peers, pgbench scale ${scale}`,
    '',
    `Generated by \`npm run bench -- ${commandLine}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (the whole run: ${((Date.now() - started) / 60000).toFixed(1)} minutes).`,
    '',
    ...machineDescription({ binDirs: { 15: serverBinDir(15), ...(pg17 ? { 17: pg17 } : {}) }, pgbackrest: pgbackrest.version ?? pgbackrest.skip }).map((l) => `- ${l}`),
    '',
    `Data directory less pg_wal: ${sizes} (MB/s is of this size). -j ${threads} for pgkeep, process-max=${threads} for pgbackrest; ` +
      `warm cache (every file read once before each run); median of ${repeat} run${repeat > 1 ? 's' : ''}, peak RSS the largest of them. ` +
      `The change is an UPDATE of ${percent}% of pgbench_accounts rows with consecutive aids, then CHECKPOINT; DELTA and PTRACK have the uncompressed FULL as parent. ` +
      '"time vs peer" is the time over the peer\'s: below 1 is faster.',
    '',
    resultsTable(rows),
    '',
    ...checks.map((l) => `Check: ${l}.`),
    '',
    '### Targets',
    '',
    targetsTable(targets),
  ].join('\n');
}

/** Codecs measured by --scales: the default first, then the others a backup may be made with. */
const SCALE_CODECS = ['zstd', 'none', 'gzip', 'lz4'];
/** The operations measured per codec by --scales, in table order. */
const SCALE_OPERATIONS = ['full', 'restore', 'validate'];

/**
 * FULL backup, restore and validate of it, per codec, at each scale, on one cluster
 * re-initialised per scale: peak RSS and seconds, to show memory is flat as the database grows.
 */
async function memoryByScale(scales) {
  const rows = [];
  const c = await buildDatabase({ major: 15, scale: scales[0], port: 55441 });
  try {
    for (const [i, scale] of scales.entries()) {
      if (i > 0) {
        log(`pgbench scale ${scale}`);
        await initPgbench(c, scale);
      }
      const pk = new PgkeepRepo(c, { name: `repo-${scale}`, threads });
      pk.setUp();
      await setArchiveCommand(c, pk.archiveCommand);
      const bytes = dataBytes(c);
      const target = join(c.work, 'restored');
      for (const codec of SCALE_CODECS) {
        const { m: full, runs } = await settledRuns(c, () => pk.backup('FULL', { compress: codec }));
        const id = runs[runs.length - 1].id;
        const restore = repeated(repeat, () => pk.restore(id, target), () => {
          rmSync(target, { recursive: true, force: true });
          warm(pk.root);
        });
        rmSync(target, { recursive: true, force: true });
        const validate = repeated(repeat, () => pk.validate(id), () => warm(pk.root));
        rows.push({ scale, bytes, codec, full, restore, validate });
        log(`scale ${scale}, ${codec}: FULL ${full.rssMb.toFixed(0)} MB, restore ${restore.rssMb.toFixed(0)} MB, validate ${validate.rssMb.toFixed(0)} MB RSS`);
      }
      await setArchiveCommand(c, '/bin/true');
      rmSync(pk.root, { recursive: true, force: true });
    }
  } finally {
    stopAndDestroy(c);
  }
  const lines = [
    '## Memory by scale',
    '',
    `Generated by \`npm run bench -- ${commandLine}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${((Date.now() - started) / 60000).toFixed(1)} minutes.`,
    '',
    ...machineDescription({ binDirs: { 15: serverBinDir(15) }, peers: false }).map((l) => `- ${l}`),
    '',
    `PostgreSQL 15, -j ${threads}, median of ${repeat} run${repeat > 1 ? 's' : ''}; peak RSS from GNU time. Per codec: a FULL backup (--stream), the restore of that backup, and its validate.`,
    '',
    '| pgbench scale | data MB | codec | FULL s | FULL peak RSS MB | restore s | restore peak RSS MB | validate s | validate peak RSS MB |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const cells = SCALE_OPERATIONS.map((op) => `${r[op].seconds.toFixed(2)} | ${r[op].rssMb.toFixed(1)}`);
    lines.push(`| ${r.scale} | ${(r.bytes / 1e6).toFixed(0)} | ${r.codec} | ${cells.join(' | ')} |`);
  }
  const span = `scale ${rows[0].scale} to ${rows[rows.length - 1].scale}`;
  const peak = (codec) => Math.max(...rows.filter((r) => r.codec === codec).flatMap((r) => SCALE_OPERATIONS.map((op) => r[op].rssMb)));
  // Flat: at every scale, each operation's peak RSS within 20% of its value at the smallest scale.
  const growth = (codec) => {
    const mine = rows.filter((r) => r.codec === codec);
    return Math.max(...SCALE_OPERATIONS.map((op) => Math.max(...mine.map((r) => r[op].rssMb)) / mine[0][op].rssMb - 1));
  };
  const targets = SCALE_CODECS.flatMap((codec) => {
    const max = peak(codec);
    const g = growth(codec);
    return [
      { target: `${codec}: peak RSS under 200 MB`, measured: `${max.toFixed(1)} MB at most`, met: max < 200, note: max < 200 ? undefined : `${(max - 200).toFixed(0)} MB over` },
      {
        target: `${codec}: peak RSS flat from ${span} (no operation grows more than 20% over its smallest-scale figure)`,
        measured: `grows at most ${(g * 100).toFixed(1)}%`,
        met: g <= 0.2,
        note: g <= 0.2 ? undefined : `${((g - 0.2) * 100).toFixed(0)} points over`,
      },
    ];
  });
  lines.push('', '### Targets', '', targetsTable(targets));
  return lines.join('\n');
}

/** FULL against DELTA after changing 1% of pgbench_accounts rows, clustered and spread (issue 3). */
async function deltaSizes(scale) {
  const c = await buildDatabase({ major: 15, scale, port: 55491 });
  const rows = [];
  try {
    const pk = new PgkeepRepo(c, { threads });
    pk.setUp();
    await setArchiveCommand(c, pk.archiveCommand);
    const step = async (what, mode, parent) => {
      await waitArchiverIdle(c);
      warm(c.pgdata);
      const m = pk.backup(mode, { parent });
      const b = pk.show(m.id);
      rows.push({ what, seconds: m.seconds, dataMb: b.data_bytes / 1e6, storedMb: b.stored_bytes / 1e6, walMb: b.wal_bytes / 1e6, rssMb: m.rssMb });
      return m.id;
    };
    const full = await step('FULL', 'FULL');
    await changeRows(c, scale, 1);
    const delta = await step('DELTA after 1% of rows changed (consecutive aids)', 'DELTA', full);
    await c.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0');
    await c.query('CHECKPOINT');
    await step('DELTA after 1% of rows changed (every 100th aid)', 'DELTA', delta);
  } finally {
    stopAndDestroy(c);
  }
  const lines = [
    `pgbench scale ${scale}, PostgreSQL 15, -j ${threads}; each backup is the parent of the next; stored includes the backup's WAL`,
    '',
    '| backup | seconds | data MB | stored MB | of which WAL MB | peak RSS MB |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) lines.push(`| ${r.what} | ${r.seconds.toFixed(2)} | ${r.dataMb.toFixed(0)} | ${r.storedMb.toFixed(1)} | ${r.walMb.toFixed(1)} | ${r.rssMb.toFixed(1)} |`);
  return lines.join('\n');
}

ensureGnuTime();
let key;
let report;
if (opts.scales) {
  key = 'scales';
  report = await memoryByScale(opts.scales.split(',').map(Number));
} else if (opts.delta) {
  report = await deltaSizes(Number(opts.scale));
} else {
  key = 'peers';
  const scale = Number(opts.scale);
  report = peersReport(scale, await comparePeers(scale));
}
console.log(report);
if (key && !opts['no-write']) {
  writeSection(docsFile, key, report);
  log(`written to ${docsFile}`);
}
log('done');
