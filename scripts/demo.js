#!/usr/bin/env node
// `npm run demo`: a real backup and restore of a throwaway cluster, with nothing to set up.
// It runs the embedded PostgreSQL 17 from the `pg17` npm package (as the postgres OS user when
// run as root, since PostgreSQL refuses root), writes some data, takes a FULL --stream backup
// with pgkeep, restores it into a new directory, starts the restored server and compares.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ThrowawayCluster } from './lib/throwaway-cluster.js';

const pgkeep = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'run.js');
const DIGEST = "SELECT count(*)::int AS n, md5(string_agg(payload, '' ORDER BY id)) AS digest FROM demo";

const source = ThrowawayCluster.create({ major: 17, port: 55431 });
const restored = source.adopt(`${source.work}/restored`, 55432);
const repo = `${source.work}/repo`;

function step(title) {
  process.stdout.write(`\n== ${title}\n`);
}

function run(args) {
  process.stdout.write(`$ pgkeep ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [pgkeep, ...args], { stdio: 'inherit', env: { ...process.env, PGKEEP_REPO: repo } });
  if (r.status !== 0) throw new Error(`pgkeep ${args[0]} exited with ${r.status}`);
}

try {
  step(`a throwaway PostgreSQL 17 cluster with data checksums in ${source.work}`);
  source.start();
  await source.query('CREATE TABLE demo AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g');
  const [before] = await source.query(DIGEST);
  console.log(`source: ${before.n} rows, digest ${before.digest}`);

  step('back it up');
  run(['init']);
  run(['add-instance', '--instance', 'demo', '-D', source.pgdata, ...source.connectionArgs]);
  run(['backup', '--instance', 'demo', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'zstd']);
  run(['show', '--instance', 'demo']);

  step('restore it into a new directory and start it');
  run(['restore', '--instance', 'demo', '-D', restored.pgdata, '-j', '2']);
  restored.start();
  const [after] = await restored.query(DIGEST);
  console.log(`restored: ${after.n} rows, digest ${after.digest}`);
  if (after.n !== before.n || after.digest !== before.digest) throw new Error('restored data differs from the source');
  console.log('\nthe restored cluster holds exactly the data of the source');
} catch (e) {
  console.error(`demo failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  for (const c of [restored, source]) {
    try {
      c.stop('immediate');
    } catch {
      /* not running */
    }
  }
  if (process.env.PGKEEP_DEMO_KEEP) console.log(`kept ${source.work}`);
  else source.destroy();
}
