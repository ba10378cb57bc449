#!/usr/bin/env node
// `node scripts/bench-startup.js [--runs 20] [other/bin/run.js ...]`
//
// Start-up of the `backup` command: modules, oclif, the catalog, up to the point where the
// command looks up its instance, timed as the wall clock of a backup that fails there (an
// instance that does not exist) on an empty repository. Prints the median, the quartile and the
// fastest of --runs runs for this checkout's bin/run.js and for each other bin/run.js given (an
// A/B against another checkout's build), the runs alternating so that the machine's drift falls
// on all of them alike. No server is involved.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pgkeepBin } from './lib/pgkeep.js';
import { extraCaCertsNote, withoutExtraCaCerts } from './lib/node-env.js';

withoutExtraCaCerts();
const { values: opts, positionals } = parseArgs({ options: { runs: { type: 'string', default: '20' } }, allowPositionals: true });
const runs = Number(opts.runs);
const work = mkdtempSync(join(tmpdir(), 'pgkeep-startup-'));
const repo = join(work, 'repo');
try {
  const run = (bin, args) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, PGKEEP_REPO: repo } });
  const init = run(pgkeepBin, ['init']);
  if (init.status !== 0) throw new Error(`pgkeep init failed:\n${init.stderr}`);
  const bins = [pgkeepBin, ...positionals].map((bin) => ({ bin, ms: [] }));
  for (let i = 0; i < runs; i++) {
    for (const b of bins) {
      const t = performance.now();
      const r = run(b.bin, ['backup', '--instance', 'no-such-instance', '-b', 'PTRACK', '--stream']);
      b.ms.push(performance.now() - t);
      if (!/no-such-instance/.test(r.stderr)) throw new Error(`${b.bin}: expected the unknown-instance error, got:\n${r.stderr}`);
    }
  }
  console.log(`backup start-up to the instance lookup, ${runs} alternating runs each (ms)`);
  const note = extraCaCertsNote();
  if (note) console.log(note);
  console.log('| bin/run.js | median | 25th percentile | fastest |');
  console.log('|---|---:|---:|---:|');
  for (const b of bins) {
    const s = [...b.ms].sort((x, y) => x - y);
    console.log(`| ${b.bin} | ${s[Math.floor(runs / 2)].toFixed(0)} | ${s[Math.floor(runs / 4)].toFixed(0)} | ${s[0].toFixed(0)} |`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
