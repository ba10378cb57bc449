// Real PostgreSQL servers for end-to-end tests of pgkeep: create one (initdb), or adopt a data
// directory the tool restored; start, stop, query, load it with pgbench, and check that it is
// right (amcheck, data checksums, table digests, pgbench's invariant).
//
// Each cluster lives in its own temp dir owned by postgres:
//   <root>/data        PGDATA (created clusters; an adopted one stays where it was restored)
//   <root>/s           unix socket directory: the only way in (listen_addresses = '')
//   <root>/server.log  server log, outside PGDATA so that backups do not carry it
//   <root>/ts-<name>   tablespaces made by createTablespace
// Port and socket dir are given on the postgres command line, never written to
// postgresql.conf, so that a restored copy starts on its own port without edits.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { PGDATA_MARKER, registerClusterCleanup, type EmergencyStoppable } from './cleanup.js';
import { binDir, hasOwnProgram, type PgMajor } from './pg-versions.js';
import { pgbenchInit, startPgbench, type PgbenchRun, type PgbenchRunOptions } from './pgbench.js';
import { verifyDataChecksums } from './page-checksum.js';
import { freePort } from './ports.js';
import { CommandError, postgresUser, runAsPostgres, runAsPostgresSync } from './run-as-postgres.js';
import { amcheckDatabase, pgbenchInvariant, quoteIdent, tableDigest, type PgbenchInvariant } from './sql-checks.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export type { PgMajor } from './pg-versions.js';
export { availableMajors, binDir, majorsUnderTest } from './pg-versions.js';
export { runAsPostgres } from './run-as-postgres.js';
export { registerClusterCleanup } from './cleanup.js';
export type { PgbenchInvariant } from './sql-checks.js';
export { invariantText } from './sql-checks.js';
export type { PgbenchRun } from './pgbench.js';

const execFileAsync = promisify(execFile);

export interface ClusterOptions {
  major: PgMajor;
  /** initdb --data-checksums; default true (also on 18, where initdb's own default is on). */
  checksums?: boolean;
  /** postgresql.conf additions, over the defaults below. Strings are quoted for you. */
  settings?: Record<string, string | number>;
  /** Shows in temp dir names and messages. */
  name?: string;
  /** Start the server once created; default true. */
  start?: boolean;
}

export interface AdoptOptions {
  major: PgMajor;
  name?: string;
  /** Start the server once adopted; default true. */
  start?: boolean;
  /** Passed to start(); default true. */
  waitForRecovery?: boolean;
}

export interface StartOptions {
  /** Wait until pg_is_in_recovery() is false (a restore has finished recovery); default true. */
  waitForRecovery?: boolean;
  /** Upper bound for start-up plus recovery; default 300 s. */
  timeoutMs?: number;
}

export interface ConnectionParams {
  host: string;
  port: number;
  user: string;
  database: string;
}

function defaultSettings(major: PgMajor): Record<string, string | number> {
  return {
    wal_level: 'replica',
    max_wal_senders: 4,
    max_replication_slots: 4,
    // Tests here do not test durability against power loss; fsync=off makes them fast.
    fsync: 'off',
    listen_addresses: '',
    shared_buffers: '16MB',
    max_connections: 40,
    log_line_prefix: '%m [%p] %q%a ',
    // Incremental backups on 17+ need the WAL summarizer.
    ...(major >= 17 ? { summarize_wal: 'on' } : {}),
  };
}

function formatSetting(value: string | number): string {
  return typeof value === 'number' ? String(value) : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

// sun_path holds 108 bytes including the terminating NUL; the server appends /.s.PGSQL.<port>.
const MAX_SOCKET_DIR = 107 - '/.s.PGSQL.65535'.length;

const START_RETRIES = 3;
const PORT_IN_USE = /could not bind|could not create any TCP\/IP sockets|could not create lock file/;

let clusterCounter = 0;

export class TestCluster implements EmergencyStoppable {
  readonly pgdata: string;
  readonly socketDir: string;
  readonly major: PgMajor;
  readonly name: string;
  /** The temp dir holding socket, log and tablespaces (and PGDATA of created clusters). */
  readonly root: string;
  private currentPort: number;
  private readonly adopted: boolean;
  private readonly logFile: string;
  private unregister: (() => void) | undefined;
  private knownChecksums: boolean | undefined;
  private readonly pgbenchRuns = new Set<PgbenchRun>();

  private constructor(init: {
    pgdata: string;
    root: string;
    major: PgMajor;
    name: string;
    port: number;
    adopted: boolean;
    checksums: boolean | undefined;
  }) {
    this.pgdata = init.pgdata;
    this.root = init.root;
    this.socketDir = join(init.root, 's');
    this.logFile = join(init.root, 'server.log');
    this.major = init.major;
    this.name = init.name;
    this.currentPort = init.port;
    this.adopted = init.adopted;
    this.knownChecksums = init.checksums;
  }

  /** initdb a new cluster in a fresh temp dir, and (by default) start it. */
  static async create(opts: ClusterOptions): Promise<TestCluster> {
    const name = opts.name ?? `pg${opts.major}-${++clusterCounter}`;
    const root = await makeClusterRoot(name);
    const checksums = opts.checksums ?? true;
    const cluster = new TestCluster({
      pgdata: join(root, 'data'),
      root,
      major: opts.major,
      name,
      port: await freePort(),
      adopted: false,
      checksums,
    });
    const checksumArgs = checksums ? ['--data-checksums'] : opts.major >= 18 ? ['--no-data-checksums'] : [];
    await runAsPostgres(join(binDir(opts.major), 'initdb'), [
      '-D',
      cluster.pgdata,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      // Skipping the final fsync saves seconds per cluster; a crash of the test machine
      // loses nothing worth keeping.
      '--no-sync',
      ...checksumArgs,
    ]);
    const settings = { ...defaultSettings(opts.major), ...opts.settings };
    const lines = Object.entries(settings).map(([key, value]) => `${key} = ${formatSetting(value)}`);
    await appendFile(join(cluster.pgdata, 'postgresql.conf'), `\n# pgkeep test harness\n${lines.join('\n')}\n`);
    if (opts.start ?? true) await cluster.start();
    return cluster;
  }

  /**
   * Takes over a data directory that pgkeep restored: checks it is a cluster of `major` that
   * is not running, gives it (and its tablespaces) to postgres with mode 0700, and (by default)
   * starts it on a new port and socket dir, waiting for recovery to finish.
   */
  static async adopt(pgdata: string, opts: AdoptOptions): Promise<TestCluster> {
    // A restore must never produce a postmaster.pid: one would make the server refuse to
    // start or, worse, be mistaken for the source cluster. Report it, do not clean it up.
    if (existsSync(join(pgdata, 'postmaster.pid'))) {
      throw new Error(`restored data directory ${pgdata} contains postmaster.pid`);
    }
    const version = (await readFile(join(pgdata, 'PG_VERSION'), 'utf8')).trim();
    if (version !== String(opts.major)) {
      throw new Error(`restored data directory ${pgdata} is PostgreSQL ${version}, expected ${opts.major}`);
    }
    const user = postgresUser();
    const owner = `${user.uid}:${user.gid}`;
    await execFileAsync('chown', ['-R', owner, pgdata]);
    await chmod(pgdata, 0o700);
    for (const link of await readdir(join(pgdata, 'pg_tblspc')).catch(() => [] as string[])) {
      const target = await realpath(join(pgdata, 'pg_tblspc', link));
      await execFileAsync('chown', ['-R', owner, target]);
      await chmod(target, 0o700);
    }
    await runAsPostgres('test', ['-r', join(pgdata, 'PG_VERSION')]).catch(() => {
      throw new Error(
        `postgres cannot read ${pgdata}: every parent directory must be traversable by postgres ` +
          `(makeTempDir gives root-owned dirs mode 0755)`,
      );
    });
    const name = opts.name ?? `restored-pg${opts.major}-${++clusterCounter}`;
    const root = await makeClusterRoot(name);
    const cluster = new TestCluster({
      pgdata,
      root,
      major: opts.major,
      name,
      port: await freePort(),
      adopted: true,
      checksums: undefined,
    });
    await writeFile(join(root, PGDATA_MARKER), `${pgdata}\n`);
    if (opts.start ?? true) await cluster.start({ waitForRecovery: opts.waitForRecovery ?? true });
    return cluster;
  }

  get port(): number {
    return this.currentPort;
  }

  /** node-postgres / libpq parameters: unix socket dir as host, trust auth as postgres. */
  get connection(): ConnectionParams {
    return { host: this.socketDir, port: this.currentPort, user: 'postgres', database: 'postgres' };
  }

  /** The same as a libpq URI, for command-line flags. */
  get connectionString(): string {
    return `postgresql://postgres@/postgres?host=${encodeURIComponent(this.socketDir)}&port=${this.currentPort}`;
  }

  /** True when a postmaster of this data directory is alive (whoever started it). */
  isRunning(): boolean {
    const pid = readPostmasterPid(this.pgdata);
    if (pid === undefined) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  async start(opts: StartOptions = {}): Promise<void> {
    if (this.isRunning()) throw new Error(`${this.name}: already running`);
    const timeoutMs = opts.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    this.unregister ??= registerClusterCleanup(this);
    for (let attempt = 1; ; attempt++) {
      const logOffset = await fileSize(this.logFile);
      try {
        await runAsPostgres(this.pgCtl, [
          'start',
          '-D',
          this.pgdata,
          '-l',
          this.logFile,
          '-w',
          '-t',
          String(Math.ceil(timeoutMs / 1000)),
          '-o',
          `-p ${this.currentPort} -k ${this.socketDir}`,
        ]);
        break;
      } catch (error) {
        // pg_ctl gives up waiting but leaves a slow server running: stop it, so that a
        // failed start never leaks a postmaster.
        if (this.isRunning()) this.emergencyStopSync();
        const log = (await readFile(this.logFile, 'utf8').catch(() => '')).slice(logOffset);
        if (PORT_IN_USE.test(log) && attempt < START_RETRIES) {
          this.currentPort = await freePort();
          continue;
        }
        this.forget();
        throw new Error(`${this.name}: pg_ctl start failed: ${(error as Error).message}\n--- server log ---\n${tail(log, 40)}`);
      }
    }
    if (opts.waitForRecovery ?? true) await this.waitForRecoveryEnd(deadline);
    const [row] = await this.query<{ data_checksums: string }>('SHOW data_checksums');
    this.knownChecksums = row?.data_checksums === 'on';
  }

  private async waitForRecoveryEnd(deadline: number): Promise<void> {
    for (;;) {
      if (!this.isRunning()) {
        throw new Error(`${this.name}: server exited during recovery\n--- server log ---\n${await this.logTail(40)}`);
      }
      const [row] = await this.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r').catch(() => [undefined]);
      if (row?.r === false) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.name}: still in recovery at the deadline\n--- server log ---\n${await this.logTail(40)}`);
      }
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 100));
    }
  }

  /** Stops the server if it runs; pgbench runs started here are ended first. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.stopPgbenchRuns();
    if (this.isRunning()) {
      await runAsPostgres(this.pgCtl, ['stop', '-D', this.pgdata, '-m', mode, '-w', '-t', '300']);
    }
    this.forget();
  }

  async restart(): Promise<void> {
    await this.stop('fast');
    await this.start();
  }

  /** Runs one statement on a short-lived connection (default database: postgres). */
  async query<T = any>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const client = new pg.Client({ ...this.connection, database });
    await client.connect();
    try {
      const result = await client.query(sql, params);
      return result.rows as T[];
    } finally {
      await client.end();
    }
  }

  /** On a standby: waits (60 s at most) until it has replayed `primary`'s WAL as far as the primary has flushed it now. */
  async waitUntilReplayed(primary: TestCluster, timeoutMs = 60_000): Promise<void> {
    const lsn = (await primary.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn'))[0]!.lsn;
    const deadline = Date.now() + timeoutMs;
    while (!(await this.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]))[0]!.ok) {
      if (Date.now() > deadline) throw new Error(`${this.name} did not replay ${primary.name}'s WAL up to ${lsn} within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async createDatabase(name: string): Promise<void> {
    await this.query(`CREATE DATABASE ${quoteIdent(name)}`);
  }

  /** pgbench -i -s <scale>, with Debian's pgbench through the unix socket. */
  async pgbenchInit(scale: number, database = 'postgres'): Promise<void> {
    await pgbenchInit(this, scale, database);
  }

  /** A concurrent writer (pgbench -n -c clients -T seconds) for a backup to race against. */
  startPgbench(opts: PgbenchRunOptions = {}): PgbenchRun {
    const started = startPgbench(this, opts);
    const run: PgbenchRun = {
      done: started.done,
      stop: async () => {
        await started.stop();
        await this.waitForPgbenchBackends();
      },
    };
    this.pgbenchRuns.add(run);
    void run.done.finally(() => this.pgbenchRuns.delete(run)).catch(() => undefined);
    return run;
  }

  /**
   * Waits (30 s at most) until no pgbench backend is left. pgbench's exit does not end the
   * statement its backend was running: on a loaded machine that statement can write a page
   * hundreds of milliseconds later, after a test has moved on (a backup's start checkpoint, say).
   * A server that is down has no backends to wait for.
   */
  private async waitForPgbenchBackends(): Promise<void> {
    if (!this.isRunning()) return;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const left = await this.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgbench'").catch(() => [{ n: 0 }]);
      if (left[0]!.n === 0) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: ${left[0]!.n} pgbench backend(s) still running 30 s after pgbench ended`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async pgbenchInvariant(database = 'postgres'): Promise<PgbenchInvariant> {
    return pgbenchInvariant(this.queryFn, database);
  }

  /** Throws listing every corrupt index or heap page; all connectable databases when undefined. */
  async amcheck(database?: string): Promise<void> {
    const databases =
      database !== undefined
        ? [database]
        : (await this.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1')).map(
            (row) => row.datname,
          );
    const problems: string[] = [];
    for (const db of databases) problems.push(...(await amcheckDatabase(this.queryFn, db, this.major)));
    if (problems.length > 0) {
      throw new Error(`${this.name}: amcheck found ${problems.length} problem(s):\n${problems.slice(0, 20).join('\n')}`);
    }
  }

  /**
   * Verifies every page checksum of the stopped cluster: with the major's own pg_checksums
   * --check when installed (Debian 15), else with the TypeScript port of the same algorithm,
   * since pg_checksums refuses clusters of other majors.
   */
  async checksumsCheck(): Promise<void> {
    if (this.isRunning()) throw new Error(`${this.name}: checksumsCheck needs the cluster stopped`);
    if (this.knownChecksums === false) throw new Error(`${this.name}: data checksums are off in this cluster`);
    if (hasOwnProgram(this.major, 'pg_checksums')) {
      await runAsPostgres(join(binDir(this.major), 'pg_checksums'), ['--check', '-D', this.pgdata]);
      return;
    }
    const report = await verifyDataChecksums(this.pgdata, this.major);
    if (report.failures.length > 0) {
      const lines = report.failures.slice(0, 20).map((f) => `${f.file} block ${f.block}: checksum ${f.found}, expected ${f.expected}`);
      throw new Error(`${this.name}: ${report.failures.length} page(s) with a bad checksum:\n${lines.join('\n')}`);
    }
    if (report.blocksScanned === 0) throw new Error(`${this.name}: checksum check found no pages in ${this.pgdata}`);
  }

  /** "schema.table" -> "<rows>:<md5>" of every permanent user table, order-independent. */
  async tableDigest(database = 'postgres'): Promise<Record<string, string>> {
    return tableDigest(this.queryFn, database);
  }

  /** CREATE TABLESPACE over a new postgres-owned dir outside PGDATA; returns its location. */
  async createTablespace(name: string): Promise<string> {
    const location = join(this.root, `ts-${name.replace(/[^A-Za-z0-9_]/g, '_')}`);
    await mkdir(location);
    const user = postgresUser();
    await chown(location, user.uid, user.gid);
    await chmod(location, 0o700);
    await this.query(`CREATE TABLESPACE ${quoteIdent(name)} LOCATION '${location.replace(/'/g, "''")}'`);
    return location;
  }

  /** Stops the server (immediate) if it runs and removes its files, PGDATA included. */
  async destroy(): Promise<void> {
    await this.stopPgbenchRuns();
    if (this.isRunning()) this.emergencyStopSync();
    this.forget();
    if (this.adopted) await rm(this.pgdata, { recursive: true, force: true });
    await removeTempDir(this.root);
  }

  /** Last lines of the server log, for failure messages. */
  async logTail(lines = 60): Promise<string> {
    return tail(await readFile(this.logFile, 'utf8').catch(() => ''), lines);
  }

  /** Synchronous immediate stop, for the process exit hook (see cleanup.ts). */
  emergencyStopSync(): void {
    if (!existsSync(join(this.pgdata, 'postmaster.pid'))) return;
    runAsPostgresSync(this.pgCtl, ['stop', '-D', this.pgdata, '-m', 'immediate', '-w', '-t', '30']);
  }

  private get pgCtl(): string {
    return join(binDir(this.major), 'pg_ctl');
  }

  private readonly queryFn = <T>(sql: string, params?: unknown[], database?: string): Promise<T[]> =>
    this.query<T>(sql, params, database);

  private async stopPgbenchRuns(): Promise<void> {
    await Promise.all([...this.pgbenchRuns].map((run) => run.stop()));
    this.pgbenchRuns.clear();
  }

  private forget(): void {
    this.unregister?.();
    this.unregister = undefined;
  }
}

/** Creates the clusters (in parallel), runs `fn`, and destroys them whatever happened. */
export async function withClusters<T>(
  options: ClusterOptions[],
  fn: (clusters: TestCluster[]) => Promise<T>,
): Promise<T> {
  const settled = await Promise.allSettled(options.map((opts) => TestCluster.create(opts)));
  const clusters = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return await fn(clusters);
  } finally {
    await Promise.all(clusters.map((cluster) => cluster.destroy()));
  }
}

async function makeClusterRoot(name: string): Promise<string> {
  const root = await makeTempDir(`c-${name}`, { owner: 'postgres' });
  const socketDir = join(root, 's');
  if (socketDir.length > MAX_SOCKET_DIR || /\s/.test(socketDir)) {
    throw new Error(`socket dir ${socketDir} is too long or has spaces for a unix socket: set TMPDIR=/tmp`);
  }
  const user = postgresUser();
  await mkdir(socketDir, { mode: 0o700 });
  await chown(socketDir, user.uid, user.gid);
  await writeFile(join(root, PGDATA_MARKER), `${join(root, 'data')}\n`);
  return root;
}

function readPostmasterPid(pgdata: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => 0);
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines - 1).join('\n');
}

export { CommandError };
