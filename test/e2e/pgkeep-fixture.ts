// A repository with one registered instance, and a runner bound to it: the common start of
// every end-to-end test.
import { expect } from 'vitest';
import { appendFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PGKEEP_BIN, runPgkeep, type PgkeepResult, type PgkeepRunOptions } from '../helpers/cli.js';
import { TestCluster, type ClusterOptions } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';

export interface RepoFixture {
  repo: string;
  instance: string;
  /** Runs pgkeep with -B set through PGKEEP_REPO. */
  run(args: string[], opts?: PgkeepRunOptions): Promise<PgkeepResult>;
  /** Runs pgkeep and fails the test, with its output, unless it exits 0. */
  ok(args: string[], opts?: PgkeepRunOptions): Promise<PgkeepResult>;
  showJson(): Promise<ShowInstance[]>;
}

export interface ShowBackup {
  id: string;
  backup_mode: string;
  status: string;
  parent_backup_id: string | null;
  start_lsn: string;
  stop_lsn: string | null;
  [key: string]: unknown;
}

export interface ShowInstance {
  instance: string;
  backups: ShowBackup[];
}

export function connectionArgs(c: TestCluster): string[] {
  const k = c.connection;
  return ['-h', k.host, '-p', String(k.port), '-U', k.user];
}

export async function newRepo(cluster: TestCluster | undefined, instance = 'main'): Promise<RepoFixture> {
  const repo = `${await makeTempDir('repo')}/repo`;
  const run = (args: string[], opts: PgkeepRunOptions = {}) => runPgkeep(args, { ...opts, env: { PGKEEP_REPO: repo, ...opts.env } });
  const ok = async (args: string[], opts: PgkeepRunOptions = {}) => {
    const r = await run(args, opts);
    expect(r.code, `pgkeep ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  const fixture: RepoFixture = {
    repo,
    instance,
    run,
    ok,
    showJson: async () => JSON.parse((await ok(['show', '--format', 'json'])).stdout) as ShowInstance[],
  };
  await ok(['init']);
  if (cluster) await ok(['add-instance', '--instance', instance, '-D', cluster.pgdata, ...connectionArgs(cluster)]);
  return fixture;
}

/** One entry line of a manifest.jsonl (docs/repository-format.md), the fields tests look at. */
export interface ManifestLine {
  path: string;
  size: number;
  storage: string;
  storedSize: number;
  storedChecksum: string | null;
  checksum: string | null;
  partSize?: number;
  parts?: { checksum: string; storedSize: number; storedChecksum: string }[];
}

/** A backup's manifest.jsonl under `repo`, read as a test reads it: its header's format version and its entries by path. */
export async function readManifestFile(repo: string, id: string, instance = 'main'): Promise<{ version: number; files: Map<string, ManifestLine> }> {
  const lines = (await readFile(join(repo, 'instances', instance, 'backups', id, 'manifest.jsonl'), 'utf8')).split('\n').filter((l) => l !== '');
  const files = lines.filter((l) => l.startsWith('{"path"')).map((l) => JSON.parse(l) as ManifestLine);
  return { version: (JSON.parse(lines[0]!) as { formatVersion: number }).formatVersion, files: new Map(files.map((l) => [l.path, l])) };
}

/** The id printed by `pgkeep backup` ("backup <ID> OK: ..."). */
export function backupIdOf(r: PgkeepResult): string {
  const m = /^backup ([0-9A-Z]+) /m.exec(r.stdout);
  if (!m) throw new Error(`no backup id in output:\n${r.stdout}\n${r.stderr}`);
  return m[1]!;
}

/** A repository path for a cluster that archives into it: in a temp dir owned by postgres, whose archive_command writes there. */
export async function archiveRepoDir(tag: string): Promise<string> {
  return join(await makeTempDir(tag, { owner: 'postgres' }), 'repo');
}

/**
 * A cluster archiving into `repo` (archive_mode on, pgkeep archive-push as archive_command, then
 * `opts.settings`), with the repository created and the cluster added as instance main, through
 * `ok`: the postgresRunner's, on that same `repo`.
 */
export async function createArchivingInstance(ok: PostgresRunner['ok'], repo: string, opts: ClusterOptions): Promise<TestCluster> {
  const cluster = await TestCluster.create({ ...opts, settings: { archive_mode: 'on', archive_command: pgkeepArchiveCommand(repo), ...opts.settings } });
  await ok(['init']);
  await ok(['add-instance', '--instance', 'main', '-D', cluster.pgdata, ...connectionArgs(cluster)]);
  return cluster;
}

/**
 * A streaming standby of `primary`, made as an operator makes one: backup `id` of instance main
 * restored with `--as-standby` and a primary_conninfo naming `primary`, `conf` appended to its
 * postgresql.auto.conf, then started without waiting for recovery to end (a standby never ends
 * it). `ok` runs pgkeep on the repository (as root or as postgres: the directory is postgres's,
 * which root may write too, and adopting gives every file to postgres).
 */
export async function restoreStandby(ok: (args: string[]) => Promise<PgkeepResult>, primary: TestCluster, id: string, opts: { name: string; conf?: string }): Promise<TestCluster> {
  const dest = join(await makeTempDir(opts.name, { owner: 'postgres' }), 'data');
  const k = primary.connection;
  await ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '--as-standby', '--primary-conninfo', `host=${k.host} port=${k.port} user=${k.user}`]);
  if (opts.conf !== undefined) await appendFile(join(dest, 'postgresql.auto.conf'), opts.conf);
  return TestCluster.adopt(dest, { major: primary.major, name: opts.name, waitForRecovery: false });
}

/** The archive_command that pushes a server's WAL into `repo` with pgkeep (quoted for its shell). */
export function pgkeepArchiveCommand(repo: string, instance = 'main'): string {
  return `"${process.execPath}" "${PGKEEP_BIN}" archive-push -B "${repo}" --instance ${instance} --wal-file-path "%p" --wal-file-name "%f"`;
}

export interface PostgresRunner {
  /** Runs pgkeep as the postgres OS user (the owner of an archiving repository) on `repoDir`. */
  pgkeep(args: string[], repoDir?: string): Promise<PgkeepResult>;
  /** The same, failing the test with the output unless it exits 0. */
  ok(args: string[]): Promise<PgkeepResult>;
  /** The sorted names in the instance's WAL archive (none when it does not exist yet). */
  archived(instance?: string): Promise<string[]>;
  /** Waits (up to 30 s) until `name` is in the archive, failing the test if it never comes. */
  waitArchived(name: string, instance?: string): Promise<void>;
  /**
   * Ends `cluster`'s current WAL segment and waits until it is archived; returns its name. A
   * non-transactional message is written first (a switch with nothing written since the last one
   * is a no-op), so that nothing commits.
   */
  switchWal(cluster: TestCluster, instance?: string): Promise<string>;
}

/**
 * pgkeep bound to a repository that the server's archive_command also writes to, so run as the
 * postgres OS user. `repo` is read at each call: tests assign it in beforeAll.
 */
export function postgresRunner(repo: () => string): PostgresRunner {
  const pgkeep = (args: string[], repoDir = repo()) => runPgkeep(args, { asPostgres: true, env: { PGKEEP_REPO: repoDir } });
  const archived = async (instance = 'main') => (await readdir(join(repo(), 'instances', instance, 'wal')).catch(() => [] as string[])).sort();
  const waitArchived = async (name: string, instance = 'main') => {
    for (let i = 0; i < 300 && !(await archived(instance)).includes(name); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await archived(instance)).toContain(name);
  };
  return {
    pgkeep,
    ok: async (args) => {
      const r = await pgkeep(args);
      expect(r.code, `pgkeep ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(0);
      return r;
    },
    archived,
    waitArchived,
    switchWal: async (cluster, instance = 'main') => {
      await cluster.query("SELECT pg_logical_emit_message(false, 'pgkeep-test', 'x')");
      const [row] = await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f');
      await waitArchived(row!.f, instance);
      return row!.f;
    },
  };
}
