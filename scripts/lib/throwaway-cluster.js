// A throwaway PostgreSQL cluster for scripts (demo, benchmark): initdb into a temp dir, start on
// a private socket, stop and remove. Run as root, the server runs as the postgres OS user
// (PostgreSQL refuses root). Tests use test/helpers/cluster.ts instead, which does much more.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Server binaries of a major: Debian's when installed, else the embedded npm build (pgNN). */
export function serverBinDir(major) {
  const debian = `/usr/lib/postgresql/${major}/bin`;
  if (existsSync(join(debian, 'postgres'))) return debian;
  const embedded = join(root, 'node_modules', `pg${major}`, 'native', 'bin');
  if (existsSync(join(embedded, 'postgres'))) return embedded;
  throw new Error(`PostgreSQL ${major} is not installed (neither ${debian} nor node_modules/pg${major})`);
}

export function postgresOsUser() {
  if (process.getuid?.() !== 0) return undefined;
  return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
}

/** Runs a program as the postgres OS user when we are root; throws with its output on failure. */
export function runAsPostgres(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...(postgresOsUser() ?? {}), ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export class ThrowawayCluster {
  constructor(major, work, pgdata, port) {
    this.major = major;
    this.work = work;
    this.pgdata = pgdata;
    this.port = port;
    this.socketDir = join(work, 'sock');
    this.bin = serverBinDir(major);
    this.running = false;
  }

  /** initdb with data checksums and settings fit for backups; not started. */
  static create({ major = 17, port = 55431, settings = {} } = {}) {
    const work = mkdtempSync(join(tmpdir(), 'pgkeep-script-'));
    chmodSync(work, 0o755);
    const user = postgresOsUser();
    if (user) chownSync(work, user.uid, user.gid);
    const c = new ThrowawayCluster(major, work, join(work, 'data'), port);
    mkdirSync(c.socketDir);
    if (user) chownSync(c.socketDir, user.uid, user.gid);
    runAsPostgres(join(c.bin, 'initdb'), ['-D', c.pgdata, '--data-checksums', '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const conf = { wal_level: 'replica', max_wal_senders: 4, fsync: 'off', ...settings };
    appendFileSync(join(c.pgdata, 'postgresql.conf'), `\n${Object.entries(conf).map(([k, v]) => `${k} = '${v}'`).join('\n')}\n`);
    return c;
  }

  /** A data directory restored elsewhere, to be started on its own port. */
  adopt(pgdata, port) {
    const c = new ThrowawayCluster(this.major, this.work, pgdata, port);
    return c;
  }

  start() {
    runAsPostgres(join(this.bin, 'pg_ctl'), ['-D', this.pgdata, '-l', `${this.pgdata}.log`, '-o', `-p ${this.port} -k ${this.socketDir} -c listen_addresses=`, '-w', '-t', '300', 'start']);
    this.running = true;
  }

  stop(mode = 'fast') {
    if (!this.running) return;
    runAsPostgres(join(this.bin, 'pg_ctl'), ['-D', this.pgdata, '-m', mode, '-w', 'stop']);
    this.running = false;
  }

  get connectionArgs() {
    return ['-h', this.socketDir, '-p', String(this.port), '-U', 'postgres'];
  }

  async query(sql) {
    const client = new pg.Client({ host: this.socketDir, port: this.port, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }

  /** Removes everything under the work directory (stop the servers first). */
  destroy() {
    rmSync(this.work, { recursive: true, force: true });
  }
}
