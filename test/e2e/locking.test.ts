// Instance locks through the CLI, against one PostgreSQL 15 server: a second backup is refused
// at once naming the first, or waits for it with --wait; restore and validate run beside a
// backup; delete is refused while a reader holds the instance and waits for it with --wait.
// The running backup is a real one without --stream, kept waiting for its WAL: archive_command
// fails until the test creates a flag file. Everything runs as postgres (archive_command does).
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGKEEP_BIN, runPgkeep, spawnPgkeep, type PgkeepResult } from '../helpers/cli.js';
import { TestCluster } from '../helpers/cluster.js';
import { postgresUser } from '../helpers/run-as-postgres.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, connectionArgs } from './pgkeep-fixture.js';

const LOCKING_JS = resolve(PGKEEP_BIN, '..', '..', 'dist', 'app', 'instance-locking.js');

describe('instance locking through the CLI', () => {
  let source: TestCluster;
  let repo: string;
  let flag: string;
  let first: string;
  const others: TestCluster[] = [];
  const children: ChildProcess[] = [];
  const pgkeep = (args: string[]) => runPgkeep(args, { asPostgres: true, env: { PGKEEP_REPO: repo } });
  const ok = async (args: string[]): Promise<PgkeepResult> => {
    const r = await pgkeep(args);
    expect(r.code, `pgkeep ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const start = (args: string[]) => {
    const child = spawnPgkeep(args, { asPostgres: true, env: { PGKEEP_REPO: repo } });
    children.push(child);
    const out = { stdout: '', stderr: '', code: undefined as number | null | undefined };
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
    const done = new Promise<PgkeepResult>((res) => child.on('close', (code) => res({ code: code ?? -1, stdout: out.stdout, stderr: out.stderr })));
    return { child, out, done };
  };
  const until = async (what: string, cond: () => boolean, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(cond(), what).toBe(true);
  };

  beforeAll(async () => {
    repo = join(await makeTempDir('lockrepo', { owner: 'postgres' }), 'repo');
    flag = join(await makeTempDir('lockflag'), 'archive-now');
    const push = `"${process.execPath}" "${PGKEEP_BIN}" archive-push -B "${repo}" --instance main --wal-file-path "%p" --wal-file-name "%f"`;
    source = await TestCluster.create({ major: 15, name: 'locking', settings: { archive_mode: 'on', archive_command: `test -f "${flag}" && ${push}`, archive_timeout: 0 } });
    await source.pgbenchInit(1);
    await ok(['init']);
    await ok(['add-instance', '--instance', 'main', '-D', source.pgdata, ...connectionArgs(source)]);
    first = backupIdOf(await ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--no-validate']));
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  it('refuses a second backup naming the running one, runs restore and validate beside it, and lets a --wait backup follow it', async () => {
    const running = start(['backup', '--instance', 'main', '-b', 'FULL', '--archive-timeout', '120', '--no-validate']);
    await until('the first backup waits for its WAL', () => /waiting for the backup's WAL/.test(running.out.stderr));
    const pid = running.child.pid!;

    const refused = await pgkeep(['backup', '--instance', 'main', '-b', 'FULL', '--stream']);
    expect(refused.code, refused.stderr).toBe(7);
    expect(refused.stderr).toMatch(new RegExp(`instance main is busy: "backup" \\(pid ${pid} on [^)]+\\) has held it since \\d{4}-\\d\\d-\\d\\dT`));
    expect(refused.stderr).toContain('--wait');

    // Readers beside the backup: validate, and a restore that starts and holds the data.
    expect((await ok(['validate', '--instance', 'main', '-i', first])).stdout).toContain(`backup ${first} is valid`);
    const dest = join(await makeTempDir('lockrestore', { owner: 'postgres' }), 'data');
    await ok(['restore', '--instance', 'main', '-i', first, '-D', dest, '--archive-mode', 'off']);
    expect(running.child.exitCode).toBeNull(); // all that while, the backup was running
    const restored = await TestCluster.adopt(dest, { major: 15, name: 'lockrestored' });
    others.push(restored);
    expect(await restored.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_accounts')).toEqual([{ n: '100000' }]);

    // A second backup with --wait=60 waits, and runs once the first has its WAL and finishes.
    const waiting = start(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--no-validate', '--wait=60']);
    await until('the second backup announces its wait', () => /waiting for "backup"/.test(waiting.out.stderr));
    expect(waiting.out.stderr).toContain(`waiting for "backup" (pid ${pid} on `);
    expect(waiting.out.stderr).toContain('to release instance main (up to 60 s)');
    await writeFile(flag, '');
    await source.query("SELECT pg_logical_emit_message(false, 'pgkeep-test', 'x')");
    await source.query('SELECT pg_switch_wal()');
    const firstDone = await running.done;
    expect(firstDone.code, firstDone.stderr).toBe(0);
    const second = await waiting.done;
    expect(second.code, second.stderr).toBe(0);
    const ids = [backupIdOf(firstDone), backupIdOf(second)];
    const show = JSON.parse((await ok(['show', '--format', 'json'])).stdout) as { backups: { id: string; status: string }[] }[];
    const statuses = new Map(show[0]!.backups.map((b) => [b.id, b.status]));
    expect(ids.map((id) => statuses.get(id))).toEqual(['DONE', 'DONE']);
  });

  it('refuses delete while a reader holds the instance, and deletes with --wait once it lets go', async () => {
    // Another process holding the shared lock as restore does, through the library.
    const user = postgresUser();
    const script = `
      const { lockInstance } = await import(${JSON.stringify(LOCKING_JS)});
      const lock = await lockInstance({ root: ${JSON.stringify(repo)}, reporter: { info() {}, warn() {} } }, 'main', 'restore');
      process.stdout.write('locked\\n');
      process.stdin.on('data', () => undefined).on('end', async () => { await lock.release(); process.stdout.write('released\\n'); });`;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'], uid: user.uid, gid: user.gid, env: { ...process.env, HOME: user.home } });
    children.push(holder);
    let said = '';
    holder.stdout.setEncoding('utf8').on('data', (c: string) => (said += c));
    await until('the holder has the lock', () => said.includes('locked'), 20_000);

    const refused = await pgkeep(['delete', '--instance', 'main', '-i', first]);
    expect(refused.code, refused.stderr).toBe(7);
    expect(refused.stderr).toMatch(new RegExp(`instance main is busy: "restore" \\(pid ${holder.pid} on `));

    // A bare --wait (last on the line): no limit.
    const waiting = start(['delete', '--instance', 'main', '-i', first, '--wait']);
    await until('delete announces its wait', () => /waiting for "restore"/.test(waiting.out.stderr), 20_000);
    expect(waiting.out.stderr).not.toContain('(up to');
    expect(waiting.child.exitCode).toBeNull();
    holder.stdin.end();
    const deleted = await waiting.done;
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(said).toContain('released');
    expect(deleted.stdout).toContain(`deleted backup ${first}`);
    expect(deleted.stderr).not.toContain('WARNING'); // released, not broken
    const show = JSON.parse((await ok(['show', '--format', 'json'])).stdout) as { backups: { id: string }[] }[];
    expect(show[0]!.backups.map((b) => b.id)).not.toContain(first);
  });
});
