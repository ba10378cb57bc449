// `merge -i` killed with -9 at random moments (seeded; the seed is printed, and
// PGKEEP_TEST_SEED=<n> replays a run). Each iteration starts from a copy of the same un-merged
// chain (FULL + 3 DELTAs), kills the merge, and checks that nothing is lost: show works, the
// last DELTA restores from whatever is on disk to the tables recorded when it was taken (before
// or after the commit), and running the merge again completes it: a FULL backup with no parent,
// valid, restoring to the same tables, with no journal, no older generation and no ancestors left.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPgkeep, spawnPgkeep, type PgkeepResult } from '../helpers/cli.js';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { sleep } from '../helpers/faults.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture, type ShowInstance } from './pgkeep-fixture.js';
import { prng } from '../helpers/random.js';
import { writeMergeJournal } from '../../src/app/merge/merge-journal.js';
import { PosixStore } from '../../src/storage/posix-store.js';

const execFileAsync = promisify(execFile);


/** PosixStore's temporary names: `<name>.tmp.<pid>.<random hex>`. */
const TEMPORARY = /\.tmp\.\d+\.[0-9a-f]+$/;


interface Case {
  major: PgMajor;
  scale: number;
  iterations: number;
}

const CASES: Case[] = [
  { major: 15, scale: 8, iterations: 6 },
  { major: 17, scale: 4, iterations: 2 },
];

describe.each(CASES)('merge killed with -9 on PostgreSQL $major', ({ major, scale, iterations }) => {
  let source: TestCluster;
  let fx: RepoFixture;
  let full: string;
  let deltas: string[];
  let target: string;
  let digest: Record<string, string>;
  const temps: string[] = [];

  beforeAll(async () => {
    source = await TestCluster.create({ major, name: `mcrash${major}` });
    await source.pgbenchInit(scale);
    fx = await newRepo(source);
  });

  afterAll(async () => {
    await source?.destroy();
  });

  /** pgkeep against another repository (a copy). */
  const runIn = (repo: string, args: string[]): Promise<PgkeepResult> => runPgkeep(args, { env: { PGKEEP_REPO: repo } });
  const okIn = async (repo: string, args: string[]): Promise<PgkeepResult> => {
    const r = await runIn(repo, args);
    expect(r.code, `pgkeep ${args.join(' ')} (in ${repo}) failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const backupDir = (repo: string, id: string) => join(repo, 'instances', 'main', 'backups', id);
  const readControl = async (repo: string, id: string) => JSON.parse(await readFile(join(backupDir(repo, id), 'backup.json'), 'utf8')) as { mode: string; parentId: string | null; generation?: number; status: string };

  async function copyRepo(): Promise<string> {
    const dir = await makeTempDir('repo-copy');
    temps.push(dir);
    await execFileAsync('cp', ['-a', fx.repo, join(dir, 'repo')]);
    return join(dir, 'repo');
  }

  async function pgbenchFor(ms: number): Promise<void> {
    const bench = source.startPgbench({ clients: 2 });
    await sleep(ms);
    await bench.stop();
  }

  /** Restores the target from `repo`, starts it, and checks its tables against the recorded ones. */
  async function restoreMatches(repo: string, label: string): Promise<void> {
    const dir = await makeTempDir('restore');
    const dest = join(dir, 'data');
    await okIn(repo, ['restore', '--instance', 'main', '-D', dest, '-i', target, '-j', '2']);
    const c = await TestCluster.adopt(dest, { major, name: `mc${major}` });
    try {
      expect(await c.tableDigest(), `tables restored ${label}`).toEqual(digest);
      expect((await c.pgbenchInvariant()).ok, `pgbench invariant ${label}`).toBe(true);
    } finally {
      await c.destroy();
      await removeTempDir(dir);
    }
  }

  /** Everything a completed merge of the target must leave in `repo`. */
  async function checkMerged(repo: string, label: string): Promise<void> {
    const [inst] = JSON.parse((await okIn(repo, ['show', '--format', 'json'])).stdout) as ShowInstance[];
    expect(inst!.backups.map((b) => b.id), `backups left ${label}`).toEqual([target]);
    const b = inst!.backups[0]!;
    expect(b.backup_mode, label).toBe('FULL');
    expect(b.parent_backup_id, label).toBeNull();
    expect(b.status, label).toBe('OK');
    const control = await readControl(repo, target);
    expect(control.mode).toBe('FULL');
    expect(control.parentId).toBeNull();
    expect(control.generation, `generation in backup.json ${label}`).toBe(1);
    const entries = (await readdir(backupDir(repo, target))).sort();
    // Only the record and the current generation: no journal, no generation-0 manifest or
    // data, no half-built or older g<N>/ ...
    expect(entries.filter((e) => !TEMPORARY.test(e)), `backup directory ${label}`).toEqual(['backup.json', 'g1']);
    // ... and no temporary left by a writer the kill interrupted (merge.json.tmp.<pid>.<hex>).
    expect.soft(entries.filter((e) => TEMPORARY.test(e)), `temporaries left in the backup directory ${label}`).toEqual([]);
    for (const a of [full, ...deltas.slice(0, -1)]) expect(existsSync(backupDir(repo, a)), `ancestor ${a} ${label}`).toBe(false);
    const v = await okIn(repo, ['validate', '--instance', 'main', '-i', target]);
    expect(v.stdout).toContain(`backup ${target} is valid`);
  }

  let mergeMs = 0;
  let commitMs = 0;

  it('builds a FULL + 3 DELTA chain and merges a copy of it uninterrupted', async () => {
    full = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--compress-algorithm', 'zstd']));
    await pgbenchFor(1500);
    const d1 = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--compress-algorithm', 'zstd']));
    await source.query("CREATE TABLE extra AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 30000) g");
    await source.query("UPDATE pgbench_accounts SET filler = 'd2' WHERE aid % 11 = 0");
    const d2 = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--compress-algorithm', 'zstd']));
    await pgbenchFor(1500);
    await source.query('DELETE FROM extra WHERE id % 4 = 0');
    await source.query('TRUNCATE pgbench_history');
    await source.query("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1, 1, 1, sum(abalance), now() FROM pgbench_accounts");
    digest = await source.tableDigest();
    const d3 = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2', '--compress-algorithm', 'zstd']));
    deltas = [d1, d2, d3];
    target = d3;
    const show = await fx.ok(['show', '-i', target, '--format', 'json']);
    expect((JSON.parse(show.stdout) as { backups: { restore_chain: string[] }[] }[])[0]!.backups[0]!.restore_chain).toEqual([d3, d2, d1, full]);

    const copy = await copyRepo();
    const t0 = Date.now();
    const merging = okIn(copy, ['merge', '--instance', 'main', '-i', target, '-j', '2']);
    // Watch for the commit (backup.json at generation 1), so that kills can be aimed at the
    // short stretch between the commit and the end as well.
    let running = true;
    void merging.finally(() => (running = false)).catch(() => undefined);
    while (running && commitMs === 0) {
      const g = await readControl(copy, target).then((c) => c.generation ?? 0).catch(() => 0);
      if (g >= 1) commitMs = Date.now() - t0;
      else await sleep(5);
    }
    const r = await merging;
    mergeMs = Date.now() - t0;
    expect(r.stdout).toContain(`backup ${target} is now FULL`);
    expect(r.stdout).toMatch(/deleted /);
    console.log(`PostgreSQL ${major}: an uninterrupted merge (process start to exit) takes ${mergeMs} ms, committing after ~${commitMs || '?'} ms; ${r.stdout.trim()}`);
    await checkMerged(copy, 'after an uninterrupted merge');
    await restoreMatches(copy, 'after an uninterrupted merge');
  });

  it('completes a merge killed between writing its journal and marking the backup MERGING', async () => {
    // The one moment random kills rarely hit: merge.json exists, backup.json is still OK with its
    // parent. The re-run must still leave the catalog row FULL, or the clean-up keeps the chain.
    const copy = await copyRepo();
    await writeMergeJournal(new PosixStore(copy), 'main', { formatVersion: 1, target, ancestors: [...deltas.slice(0, -1)].reverse().concat(full), newGeneration: 1, previousStatus: 'OK' });
    expect((await readControl(copy, target)).status).toBe('OK');
    const again = await okIn(copy, ['merge', '--instance', 'main', '-i', target, '-j', '2']);
    expect(again.stderr).toContain(`resuming the merge of backup ${target}`);
    expect(again.stdout).toContain(`backup ${target} is now FULL`);
    await checkMerged(copy, 'after a merge killed before it marked the backup MERGING');
  });

  it(`keeps the chain restorable when merge is killed at random moments (${iterations} kills)`, async () => {
    expect(mergeMs).toBeGreaterThan(0);
    const seed = Number(process.env.PGKEEP_TEST_SEED ?? Date.now() % 2 ** 31);
    console.log(`PostgreSQL ${major}: merge-crash seed ${seed} (PGKEEP_TEST_SEED=${seed} replays it)`);
    const random = prng(seed);
    const tally = { beforeCommit: 0, afterCommit: 0, finished: 0 };
    for (let i = 0; i < iterations; i++) {
      const copy = await copyRepo();
      // Even iterations: a delay anywhere in the merge. Odd ones: a delay after the commit is
      // seen in backup.json (the clean-up stretch, a few hundred ms that timing alone from
      // the start rarely hits, as start-up time varies more than that).
      const afterCommit = i % 2 === 1;
      const delay = Math.round(random() * (afterCommit ? Math.max(50, mergeMs - commitMs) : mergeMs));
      const child = spawnPgkeep(['merge', '--instance', 'main', '-i', target, '-j', '2'], { env: { PGKEEP_REPO: copy } });
      let out = '';
      child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
      let exited = false;
      const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      void closed.then(() => (exited = true));
      if (afterCommit) {
        while (!exited && ((await readControl(copy, target).catch(() => undefined))?.generation ?? 0) < 1) await sleep(2);
      }
      await Promise.race([sleep(delay), closed]);
      const exitedAlone = child.exitCode !== null;
      if (!exitedAlone) child.kill('SIGKILL');
      const code = await closed;
      if (exitedAlone) expect(code, `merge exited by itself:\n${out}`).toBe(0);

      const control = await readControl(copy, target);
      const committed = (control.generation ?? 0) >= 1;
      const journal = existsSync(join(backupDir(copy, target), 'merge.json'));
      const where = exitedAlone ? 'finished' : committed ? 'afterCommit' : 'beforeCommit';
      tally[where]++;
      const label = `(iteration ${i}, seed ${seed}, kill ${delay} ms after ${afterCommit ? 'the commit' : 'the start'}: ${where}${journal ? ', journal present' : ''})`;
      console.log(`PostgreSQL ${major}: ${label}`);
      if (!committed) {
        expect(control.mode, label).toBe('DELTA');
        expect(control.parentId, label).toBe(deltas[1]);
      } else {
        expect(control.mode, label).toBe('FULL');
        expect(control.parentId, label).toBeNull();
      }

      // What is on disk right now: show works, and the last DELTA restores to its tables.
      const show = await runIn(copy, ['show', '--format', 'json']);
      expect(show.code, `show ${label}:\n${show.stderr}`).toBe(0);
      const [inst] = JSON.parse(show.stdout) as ShowInstance[];
      expect(inst!.backups.map((b) => b.id), label).toContain(target);
      await restoreMatches(copy, `from the interrupted merge ${label}`);

      if (committed && !journal) {
        // The kill came after the last step (or the merge ended by itself): it is complete, and
        // running it again, as the help says to after an interruption, succeeds doing nothing.
        const again = await okIn(copy, ['merge', '--instance', 'main', '-i', target, '-j', '2']);
        expect(again.stdout, label).toContain(`backup ${target} is already merged`);
      } else {
        // Run again: the merge completes.
        const again = await okIn(copy, ['merge', '--instance', 'main', '-i', target, '-j', '2']);
        if (journal) expect(again.stderr, label).toContain(`resuming the merge of backup ${target}`);
        expect(again.stdout, label).toContain(`backup ${target} is now FULL`);
      }
      await checkMerged(copy, `after re-running the merge ${label}`);
      await restoreMatches(copy, `after re-running the merge ${label}`);
      await removeTempDir(join(copy, '..'));
    }
    console.log(`PostgreSQL ${major}: kills before the commit: ${tally.beforeCommit}, after the commit: ${tally.afterCommit}, merge finished before the kill: ${tally.finished}`);
    expect(tally.beforeCommit + tally.afterCommit + tally.finished).toBe(iterations);
  });
});
