// Running programs as the `postgres` OS user. PostgreSQL refuses to run as root, and these
// machines run tests as root, so every initdb/pg_ctl/postgres goes through here.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';

export interface PostgresUser {
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

let cachedUser: PostgresUser | undefined;

/** uid/gid of the `postgres` user, looked up once (`id`), as the Debian package creates it. */
export function postgresUser(): PostgresUser {
  if (cachedUser === undefined) {
    const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    const passwd = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' });
    cachedUser = { uid: id('-u'), gid: id('-g'), home: passwd.split(':')[5] ?? '/' };
  }
  return cachedUser;
}

/**
 * A clean environment for the child: the caller's PG* variables (PGHOST, PGPORT, PGDATA...)
 * must not leak into a test server, and HOME must be one postgres can read. The npm builds
 * need no LD_LIBRARY_PATH: their binaries carry RUNPATH $ORIGIN/../lib.
 */
function postgresEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG') && key !== 'HOME' && key !== 'USER' && key !== 'LOGNAME') env[key] = value;
  }
  const user = postgresUser();
  return { ...env, HOME: user.home, USER: 'postgres', LOGNAME: 'postgres', LC_ALL: 'C', ...extra };
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Defaults to os.tmpdir(): initdb and pg_ctl fail when they cannot stat their cwd (e.g. /root). */
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${command} failed (${signal ?? `exit ${code}`}):\n${stderr.trim() || stdout.trim()}`);
    this.name = 'CommandError';
  }
}

export interface SpawnedAsPostgres {
  readonly child: ChildProcess;
  /** Settles when the child has exited and its output is drained. */
  readonly result: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Spawns `cmd args` as postgres, collecting stdout/stderr; for long-running clients (pgbench). */
export function spawnAsPostgres(cmd: string, args: string[], opts: RunOptions = {}): SpawnedAsPostgres {
  const user = postgresUser();
  const child = spawn(cmd, args, {
    uid: user.uid,
    gid: user.gid,
    cwd: opts.cwd ?? tmpdir(),
    env: postgresEnv(opts.env),
    // Never inherit stdin: pg_ctl start hands its stdio to the postmaster it forks, and a pipe
    // left open there would keep the caller waiting for the server's lifetime (hence pg_ctl
    // is always given -l too).
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    timeout: opts.timeoutMs,
    killSignal: 'SIGKILL',
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  const result = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolvePromise, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    },
  );
  return { child, result };
}

/** Runs `cmd args` as postgres; resolves with its output, rejects with CommandError otherwise. */
export async function runAsPostgres(
  cmd: string,
  args: string[],
  opts: RunOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  const { code, signal, stdout, stderr } = await spawnAsPostgres(cmd, args, opts).result;
  if (code !== 0) throw new CommandError([cmd, ...args].join(' '), code, signal, stdout, stderr);
  return { stdout, stderr };
}

/** Synchronous variant for process-exit cleanup, where no promise will ever be awaited. */
export function runAsPostgresSync(cmd: string, args: string[], timeoutMs = 30_000): number | null {
  const user = postgresUser();
  const result = spawnSync(cmd, args, {
    uid: user.uid,
    gid: user.gid,
    cwd: tmpdir(),
    env: postgresEnv(undefined),
    stdio: 'ignore',
    timeout: timeoutMs,
  });
  return result.status;
}
