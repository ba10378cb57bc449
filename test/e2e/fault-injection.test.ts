// The fault-injection suite (docs/fault-injection.md), on one archiving PostgreSQL 15 cluster at
// pgbench scale 1 with light pgbench load between faults:
//
// - kill -9 at a random moment (seeded: PGKEEP_FAULT_SEED=<n> replays a run) of a FULL backup,
//   a DELTA, a PAGE, a merge, a delete and an archive-push, cycling, 24 times. After each: every
//   OK backup validates (one `validate`), every leftover that no catalog row or manifest owns is
//   reported by it, an interrupted merge or delete completes when run again, and every 4th
//   iteration (the last included) the newest OK backup restores, starts and holds pgbench's
//   invariant (a restore and start costs seconds: not after every fault);
// - server faults during a backup: its session killed with pg_terminate_backend, the server
//   restarted; the backup fails with a clear error and the next one works;
// - a full disk: the repository on a tmpfs that holds one FULL backup but not two (and a
//   restore onto it that cannot fit).
//
// The suite prints its totals at the end; data lost must be 0.
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPgkeep, spawnPgkeep, type PgkeepResult } from '../helpers/cli.js';
import { TestCluster, invariantText } from '../helpers/cluster.js';
import { FaultTotals, findTemporaries, freeBytes, killPgkeepAfter, mountTmpfs, prng, seedFrom, sleep, unmount, unownedReported } from '../helpers/faults.js';
import { postgresUser } from '../helpers/run-as-postgres.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { backupIdOf, connectionArgs, type ShowBackup, type ShowInstance, pgkeepArchiveCommand } from './pgkeep-fixture.js';

const ITERATIONS = 24;
const RESTORE_EVERY = 4;
const KINDS = ['backup FULL', 'backup DELTA', 'backup PAGE', 'merge', 'delete', 'archive-push'] as const;
type Kind = (typeof KINDS)[number];

describe('fault injection on PostgreSQL 15', () => {
  let source: TestCluster;
  let repo: string;
  let work: string;
  const totals = new FaultTotals();

  const pk = (args: string[], r = repo): Promise<PgkeepResult> => runPgkeep(args, { asPostgres: true, env: { PGKEEP_REPO: r } });
  const ok = async (args: string[], r = repo): Promise<PgkeepResult> => {
    const res = await pk(args, r);
    expect(res.code, `pgkeep ${args.join(' ')}:\n${res.stdout}\n${res.stderr}`).toBe(0);
    return res;
  };
  const show = async (r = repo): Promise<ShowBackup[]> => (JSON.parse((await ok(['show', '--format', 'json'], r)).stdout) as ShowInstance[])[0]?.backups ?? [];
  const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const t0 = Date.now();
    const r = await fn();
    return [r, Date.now() - t0];
  };
  async function burst(ms: number): Promise<void> {
    const bench = source.startPgbench({ clients: 2 });
    await sleep(ms);
    await bench.stop();
  }

  /** Restores the newest OK backup (or `id`) of `r`, starts it, checks pgbench's invariant. */
  async function restoreVerified(label: string, r = repo, id?: string): Promise<void> {
    const target = id ?? (await show(r)).find((b) => b.status === 'OK')?.id;
    expect(target, `${label}: an OK backup to restore`).toBeDefined();
    const dir = await makeTempDir('fault-restore', { owner: 'postgres' });
    const dest = join(dir, 'data');
    try {
      const res = await pk(['restore', '--instance', 'main', '-i', target!, '-D', dest, '-j', '2', '--archive-mode', 'off'], r);
      if (res.code !== 0) totals.lost(`${label}: restore of ${target} failed`);
      expect(res.code, `${label}: restore ${target}\n${res.stderr}`).toBe(0);
      const c = await TestCluster.adopt(dest, { major: 15, name: 'fault-restored' });
      try {
        const inv = await c.pgbenchInvariant();
        if (!inv.ok) totals.lost(`${label}: pgbench invariant broken in ${target}`);
        expect(inv.ok, `${label}: pgbench invariant of ${target}: ${invariantText(inv)}`).toBe(true);
        totals.restoresVerified++;
      } finally {
        await c.destroy();
      }
    } finally {
      await removeTempDir(dir);
    }
  }

  /** One `validate`: every OK/DONE backup (of `backups`, as show listed them) must pass; returns what it reported as unowned. */
  async function validateAll(label: string, backups: ShowBackup[]): Promise<string[]> {
    const bad = backups.filter((b) => b.status === 'CORRUPT' || b.status === 'ORPHAN');
    for (const b of bad) totals.lost(`${label}: backup ${b.id} is ${b.status}`);
    expect(bad.map((b) => `${b.id} ${b.status}`), label).toEqual([]);
    const v = await pk(['validate', '--instance', 'main', '-j', '2']);
    if (v.code !== 0) totals.lost(`${label}: validate failed`);
    expect(v.code, `${label}: validate\n${v.stderr}`).toBe(0);
    const valid = (v.stdout.match(/^backup \S+ is valid/gm) ?? []).length;
    expect(valid, `${label}: every OK backup validated\n${v.stdout}`).toBe(backups.filter((b) => b.status === 'OK' || b.status === 'DONE').length);
    totals.backupsValidated += valid;
    return unownedReported(v.stderr);
  }

  /**
   * Leftovers found independently of pgkeep: backup dirs with no row, and temporaries of dead
   * writers outside them (a dir with no row is one leftover, whatever it holds: a backup killed
   * while it wrote its first backup.json leaves the dir and that file's temporary).
   */
  async function leftovers(backups: ShowBackup[]): Promise<string[]> {
    const rows = new Set(backups.map((b) => b.id));
    const dirs = (await readdir(join(repo, 'instances/main/backups'))).filter((d) => !rows.has(d)).map((d) => `instances/main/backups/${d}`);
    const temps = (await findTemporaries(repo)).filter((t) => !dirs.some((d) => t.startsWith(`${d}/`))).filter((t) => {
      const pid = Number(/\.tmp\.(\d+)\./.exec(t)![1]);
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    return [...temps, ...dirs].sort();
  }

  beforeAll(async () => {
    work = await makeTempDir('fault', { owner: 'postgres' });
    repo = join(work, 'repo');
    const archiveCommand = pgkeepArchiveCommand(repo);
    source = await TestCluster.create({ major: 15, name: 'fault', settings: { archive_mode: 'on', archive_command: archiveCommand } });
    await ok(['init']);
    await ok(['add-instance', '--instance', 'main', '-D', source.pgdata, ...connectionArgs(source)]);
    await ok(['set-config', '--instance', 'main', '--compress-algorithm', 'lz4']);
    await source.pgbenchInit(1);
  });

  afterAll(async () => {
    console.log(totals.report('fault-injection suite'));
    await source?.destroy();
    expect(totals.dataLost).toBe(0);
  });

  it(`survives kill -9 of backup, merge, delete and archive-push at random moments (${ITERATIONS} iterations)`, async () => {
    const random = prng(seedFrom('PGKEEP_FAULT_SEED', 'fault injection'));
    // How long each operation takes here, process start to exit: delays are drawn below these.
    const [, fullMs] = await timed(() => ok(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--stream']));
    await burst(500);
    const [, deltaMs] = await timed(() => ok(['backup', '--instance', 'main', '-b', 'DELTA', '-j', '2']));
    const [, startMs] = await timed(() => show());
    const archived = (await readdir(join(repo, 'instances/main/wal'))).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    const walCopy = join(work, 'segment');
    await ok(['archive-get', '--instance', 'main', '--wal-file-path', walCopy, '--wal-file-name', archived[0]!]);
    const walBytes = await readFile(walCopy);
    const [, pushMs] = await timed(() => ok(['archive-push', '--instance', 'main', '--wal-file-path', walCopy, '--wal-file-name', `${archived[0]!}.partial`]));
    // Leftovers validate must report (and only report): a backup directory with no catalog row,
    // a data file no manifest lists, a stray name in the WAL archive.
    const fullId = (await show()).find((b) => b.backup_mode === 'FULL')!.id;
    const planted = ['instances/main/backups/STRAY1', `instances/main/backups/${fullId}/data/base/stray-file`, 'instances/main/wal/not-a-segment'];
    for (const p of planted) await writeFile(join(repo, p), 'x');
    const withStrays = await pk(['validate', '--instance', 'main']);
    expect(withStrays.code, withStrays.stderr).toBe(0);
    expect(unownedReported(withStrays.stderr)).toEqual([...planted].sort());
    expect(withStrays.stderr).toContain('WARNING: 3 path(s) in the repository belong to no backup or instance');
    for (const p of planted) await rm(join(repo, p));
    console.log(`fault injection: a FULL backup takes ${fullMs} ms, a DELTA ${deltaMs} ms, a command start ${startMs} ms, an archive-push ${pushMs} ms`);

    // Delays are drawn below these; an operation that finishes before its kill shortens its own.
    const spans: Record<Kind, number> = { 'backup FULL': fullMs, 'backup DELTA': deltaMs, 'backup PAGE': deltaMs, merge: deltaMs, delete: startMs + 600, 'archive-push': pushMs };
    const outcome = { killed: 0, finishedFirst: 0 };
    let leftoversSeen = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      await burst(300);
      const kind: Kind = KINDS[i % KINDS.length]!;
      let label = `iteration ${i} (${kind})`;
      let args: string[];
      let rerun: string[] | undefined;
      let pushed: string | undefined;
      let victim: string | undefined;
      switch (kind) {
        case 'backup FULL':
          args = ['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', ...(i % 12 < 6 ? ['--stream'] : [])];
          break;
        case 'backup DELTA':
          args = ['backup', '--instance', 'main', '-b', 'DELTA', '-j', '2'];
          break;
        case 'backup PAGE':
          args = ['backup', '--instance', 'main', '-b', 'PAGE', '-j', '2'];
          break;
        case 'merge': {
          let target = (await show()).find((b) => b.status === 'OK' && b.backup_mode !== 'FULL')?.id;
          if (!target) target = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'DELTA', '-j', '2']));
          args = ['merge', '--instance', 'main', '-i', target, '-j', '2'];
          rerun = args;
          break;
        }
        case 'delete': {
          // The oldest chain when two FULL backups exist (keeps the repository small), else a
          // failed backup, else a new FULL backup's predecessor chain.
          let backups = await show();
          let fulls = backups.filter((b) => b.backup_mode === 'FULL' && b.status === 'OK');
          if (fulls.length < 2 && !backups.some((b) => b.status === 'ERROR')) {
            await ok(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--stream']);
            backups = await show();
            fulls = backups.filter((b) => b.backup_mode === 'FULL' && b.status === 'OK');
          }
          victim = fulls.length >= 2 ? fulls.at(-1)!.id : backups.filter((b) => b.status === 'ERROR').at(-1)!.id;
          args = ['delete', '--instance', 'main', '-i', victim];
          rerun = args;
          break;
        }
        case 'archive-push':
          pushed = `${archived[0]!.slice(0, 16)}${(0x80 + i).toString(16).toUpperCase().padStart(8, '0')}.partial`;
          args = ['archive-push', '--instance', 'main', '--wal-file-path', walCopy, '--wal-file-name', pushed];
          break;
      }
      // Not in the first fifth: a process killed while node loads has done nothing yet.
      const delay = Math.round(spans[kind] * (0.2 + 0.8 * random()));
      label += `, kill after ${delay} ms`;
      const k = await killPgkeepAfter(args, delay, { asPostgres: true, env: { PGKEEP_REPO: repo } });
      if (k.exitedAlone !== undefined) {
        outcome.finishedFirst++;
        expect(k.exitedAlone, `${label}: ended by itself\n${k.output}`).toBe(0);
        spans[kind] = Math.min(spans[kind], k.elapsedMs);
      } else {
        outcome.killed++;
        totals.fault(`kill -9 ${kind}`);
      }
      console.log(`fault injection: ${label}: ${k.exitedAlone === undefined ? 'killed' : 'finished first'}`);

      // The user's way out of an interrupted merge or delete: run it again.
      let backups = await show();
      if (rerun && (kind === 'merge' || backups.some((b) => b.id === victim))) {
        await ok(rerun);
        backups = await show();
      }
      if (victim) expect(backups.map((b) => b.id), label).not.toContain(victim);
      if (pushed) {
        const got = join(work, 'got');
        const r = await pk(['archive-get', '--instance', 'main', '--wal-file-path', got, '--wal-file-name', pushed]);
        if (r.code === 0) expect((await readFile(got)).equals(walBytes), `${label}: archive-get serves the whole file or nothing`).toBe(true);
        else expect(r.code, `${label}: ${r.stderr}`).toBe(1);
      }

      const reported = await validateAll(label, backups);
      const expected = await leftovers(backups);
      if (expected.length > 0) console.log(`fault injection: ${label}: leftovers ${expected.join(', ')}`);
      leftoversSeen += expected.length;
      expect(reported, `${label}: validate reports every leftover, and nothing else`).toEqual(expected);
      if (i % RESTORE_EVERY === RESTORE_EVERY - 1 || i === ITERATIONS - 1) await restoreVerified(label);
    }
    console.log(`fault injection: ${outcome.killed} operations killed, ${outcome.finishedFirst} finished before the kill; validate reported ${leftoversSeen} leftover(s) over the iterations`);
    expect(outcome.killed + outcome.finishedFirst).toBe(ITERATIONS);
  });

  it('fails a backup clearly when its session is terminated or the server restarts, and the next one works', async () => {
    for (const fault of ['pg_terminate_backend', 'pg_ctl restart -m fast'] as const) {
      const child = spawnPgkeep(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--stream'], { asPostgres: true, env: { PGKEEP_REPO: repo } });
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      const deadline = Date.now() + 60_000;
      while (!/started at LSN/.test(stderr) && Date.now() < deadline) await sleep(20);
      expect(stderr).toMatch(/started at LSN/);
      if (fault === 'pg_terminate_backend') {
        const killed = await source.query<{ t: boolean }>("SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE application_name = 'pgkeep backup'");
        expect(killed.map((r) => r.t)).toEqual([true]);
      } else {
        await source.restart();
      }
      totals.fault(`server: ${fault} during a backup`);
      const code = await closed;
      expect(code, `${fault}:\n${stderr}`).toBe(5);
      expect(stderr).toMatch(/^ERROR: the server closed the backup's connection before .*; the backup was aborted$/m);
      expect(stderr).toContain('HINT: the server closed the connection: check its log; take the backup again');
      expect(stderr, 'no raw stack').not.toMatch(/^\s+at |internal error/m);
      const [failed] = await show();
      expect(failed!.status, fault).toBe('ERROR');
      const next = await ok(['backup', '--instance', 'main', '-b', 'DELTA', '-j', '2']);
      expect((await show()).find((b) => b.id === backupIdOf(next))!.status).toBe('OK');
    }
    expect(await source.query("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgkeep%'")).toEqual([]);
    await restoreVerified('after server faults');
  });

  it('fails a backup that fills the disk cleanly, damages nothing, and gives the space back', async (ctx) => {
    const mnt = await makeTempDir('fault-tmpfs', { owner: 'postgres' });
    const user = postgresUser();
    const why = await mountTmpfs(mnt, 256, user);
    if (why) {
      console.log(`full-disk test skipped: ${why}`);
      ctx.skip();
      return;
    }
    const small = join(mnt, 'repo');
    try {
      await ok(['init'], small);
      await ok(['add-instance', '--instance', 'main', '-D', source.pgdata, ...connectionArgs(source)], small);
      const first = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--stream'], small));
      // Shrink the file system to one and a half times what it holds: a second FULL cannot fit.
      const total = statfsSync(mnt);
      const used = (total.blocks - total.bfree) * total.bsize;
      const sizeMb = Math.ceil((used * 1.5) / 2 ** 20) + 1;
      execFileSync('mount', ['-o', `remount,size=${sizeMb}m`, mnt]);
      const before = await freeBytes(mnt);
      await burst(300);
      // The pre-flight check refuses at once, with both figures, and records nothing.
      const refused = await pk(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--stream'], small);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toMatch(/^ERROR: the repository has [\d.]+ (B|kB|MB|GB|TB) free, but this FULL backup needs about [\d.]+ (B|kB|MB|GB|TB) \(.*backup .+\)$/m);
      expect(refused.stderr).toContain('--skip-space-check');
      expect((await show(small)).map((b) => b.id)).toEqual([first]);
      expect(before - (await freeBytes(mnt)), "nothing written").toBeLessThanOrEqual(64 * 1024);
      // Past the check, the disk fills mid-backup.
      const r = await pk(['backup', '--instance', 'main', '-b', 'FULL', '-j', '2', '--stream', '--skip-space-check'], small);
      totals.fault('disk full during a backup');
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^ERROR: no space left while trying to .+$/m);
      expect(r.stderr).toContain('HINT: free space on that file system or move the repository, then run the command again');
      expect(r.stderr, 'no raw stack').not.toMatch(/^\s+at |internal error/m);
      expect(await findTemporaries(small), 'no temporaries left').toEqual([]);
      const backups = await show(small);
      const failed = backups.find((b) => b.id !== first)!;
      expect(failed.status).toBe('ERROR');
      const slack = 256 * 1024; // backup.json of the failed backup, catalog pages
      let after = await freeBytes(mnt);
      console.log(`full disk: ${sizeMb} MiB file system, ${before} bytes free before the failed backup, ${after} after`);
      if (before - after > slack) {
        // The failed backup kept its verified files for a resume: delete gives them back.
        await ok(['delete', '--instance', 'main', '-i', failed.id], small);
        after = await freeBytes(mnt);
        console.log(`full disk: ${after} bytes free after deleting the failed backup ${failed.id}`);
      }
      expect(before - after, 'space released').toBeLessThanOrEqual(slack);
      // A restore that fills the disk stops part-way, before pg_control, and says what to remove.
      const partial = join(mnt, 'restored');
      const filled = await pk(['restore', '--instance', 'main', '-i', first, '-D', partial, '-j', '2'], small);
      totals.fault('disk full during a restore');
      expect(filled.code, filled.stderr).toBe(1);
      expect(filled.stderr).toMatch(/^ERROR: no space left while trying to write .+$/m);
      expect(filled.stderr).toContain(`HINT: free space on that file system (or restore elsewhere), remove ${partial} (left part-written, without global/pg_control: it cannot start), and restore again`);
      expect(await readdir(join(partial, 'global')), 'pg_control is written last').not.toContain('pg_control');
      await rm(partial, { recursive: true, force: true });
      const v = await ok(['validate', '--instance', 'main', '-i', first], small);
      expect(v.stdout).toContain(`backup ${first} is valid`);
      totals.backupsValidated++;
      await restoreVerified('after the full disk', small, first);
    } finally {
      await unmount(mnt);
    }
  });
});
