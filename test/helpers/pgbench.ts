// pgbench as the workload of backup tests. Debian's pgbench (15) is used for every server
// major: the npm builds ship no client programs, and pgbench 15 initialises and drives a
// 17 server without complaint.
import { CommandError, runAsPostgres, spawnAsPostgres } from './run-as-postgres.js';
import { clientProgram, type PgMajor } from './pg-versions.js';

export interface PgbenchTarget {
  readonly socketDir: string;
  readonly port: number;
  readonly major: PgMajor;
}

const connectionArgs = (target: PgbenchTarget): string[] => [
  '-h',
  target.socketDir,
  '-p',
  String(target.port),
  '-U',
  'postgres',
];

export async function pgbenchInit(target: PgbenchTarget, scale: number, database: string): Promise<void> {
  const pgbench = clientProgram('pgbench', target.major);
  await runAsPostgres(pgbench, ['-i', '-q', '-s', String(scale), ...connectionArgs(target), database]);
}

export interface PgbenchRun {
  /**
   * Resolves when pgbench ends by itself with success or was ended by stop(); rejects when it
   * failed (e.g. the server went away). Never reported as an unhandled rejection: tests that
   * stop the server under pgbench on purpose may ignore it.
   */
  readonly done: Promise<void>;
  /**
   * Ends pgbench (transactions in flight roll back, so the invariant holds) and waits for it;
   * a TestCluster's run also waits until the server has no pgbench backend left.
   */
  stop(): Promise<void>;
}

export interface PgbenchRunOptions {
  clients?: number;
  /** Run length; by default pgbench runs until stop(). */
  seconds?: number;
  database?: string;
}

export function startPgbench(target: PgbenchTarget, opts: PgbenchRunOptions = {}): PgbenchRun {
  const clients = opts.clients ?? 2;
  const args = [
    // -n: without it pgbench vacuums and TRUNCATEs pgbench_history before it starts, which
    // breaks the balance invariant as soon as an earlier run left any history.
    '-n',
    '-c',
    String(clients),
    '-j',
    String(Math.min(clients, 4)),
    '-T',
    String(opts.seconds ?? 24 * 3600),
    ...connectionArgs(target),
    opts.database ?? 'postgres',
  ];
  const pgbench = clientProgram('pgbench', target.major);
  const { child, result } = spawnAsPostgres(pgbench, args);
  let stopping = false;
  const done = result.then(({ code, signal, stdout, stderr }) => {
    if (code === 0 || stopping) return;
    throw new CommandError(`${pgbench} ${args.join(' ')}`, code, signal, stdout, stderr);
  });
  done.catch(() => undefined);
  return {
    done,
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await result;
    },
  };
}
