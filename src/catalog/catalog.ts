/**
 * The SQLite catalog: an index of what the repository holds (instances and backups), for fast
 * listing and chain walks. The repository's instance.json / backup.json stay the source of truth.
 * `pgkeep catalog rebuild` clears this index and refills it from them.
 *
 * One Catalog wraps one better-sqlite3 connection. better-sqlite3 is synchronous, so every method
 * is too. Prepared statements are compiled once per connection and reused.
 *
 * Concurrency: WAL journal mode lets readers carry on while one process writes. The busy timeout
 * makes a second writer wait instead of failing at once. Write transactions start IMMEDIATE, so
 * they take the write lock up front. A deferred transaction that reads first and then writes can
 * fail with SQLITE_BUSY without waiting, if another writer committed in between.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, renameSync, statSync } from 'node:fs';
import type { BackupMode, BackupRecord, BackupStatus, CompressAlg } from '../core/backup-types.js';
import type { Lsn } from '../core/lsn.js';
import { errnoCode, errorMessage, PgkeepError } from '../errors.js';
import { BACKUP_COLUMNS, type BackupColumns, backupFromColumns, backupToColumns, sortableLsn } from './backup-row.js';
import { type InstanceColumns, type InstanceRow, instanceFromColumns, instanceToColumns } from './instance-row.js';
import { DEFAULT_MIGRATIONS_DIR, migrate, pendingMigrations, readMigrations } from './migrator.js';

export type { InstanceConnection, InstanceRow } from './instance-row.js';

export interface OpenCatalogOptions {
  /**
   * Open without writing. The file must exist and already be at this program's schema version,
   * because a read-only connection cannot migrate it.
   */
  readonly?: boolean;
  /** Directory of migration files; tests pass their own. */
  migrationsDir?: string;
  /**
   * Refuse (CATALOG_CORRUPT) a missing or empty file instead of creating one: a repository's
   * catalog is created by `init`, and one that vanished must be rebuilt, not silently replaced
   * by an empty index that would make every backup disappear.
   */
  mustExist?: boolean;
}

/** How long a connection waits for another one's lock before giving up, in milliseconds. */
const BUSY_TIMEOUT_MS = 10_000;

/** Open (creating if needed) the catalog at `path` and bring its schema up to date. */
export function openCatalog(path: string, opts: OpenCatalogOptions = {}): Catalog {
  const readonly = opts.readonly ?? false;
  const dir = opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR;
  if (opts.mustExist && !(statSync(path, { throwIfNoEntry: false })?.size)) {
    throw new PgkeepError('CATALOG_CORRUPT', `catalog ${path} is missing or empty`, REBUILD_HINT);
  }
  let db: Database.Database;
  try {
    if (!readonly) ensurePrivateFile(path);
    db = new Database(path, { readonly, fileMustExist: readonly, timeout: BUSY_TIMEOUT_MS });
  } catch (e) {
    throw openError(e, path);
  }
  try {
    if (!readonly) {
      // WAL is persistent in the file; a read-only connection cannot (and need not) set it.
      db.pragma('journal_mode = WAL');
      // It is a backup catalog: a committed status change must survive a power cut, even at
      // the cost of an fsync per commit.
      db.pragma('synchronous = FULL');
    }
    // Stock SQLite turns foreign keys off per connection; better-sqlite3's build happens to turn
    // them on. Setting it here keeps the instances -> backups cascade independent of that build.
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // A damaged file must fail here, with the way out, not later as a raw SQLite error. The
    // catalog is small: checking every page's structure costs milliseconds.
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw new PgkeepError('CATALOG_CORRUPT', `catalog ${path} is damaged: ${check.replace(/\s+/g, ' ').trim()}`, REBUILD_HINT);
    if (readonly) {
      assertCurrentSchema(db, dir);
    } else {
      migrate(db, { dir });
    }
  } catch (e) {
    db.close();
    throw openError(e, path);
  }
  return new Catalog(db, readonly);
}

/**
 * The catalog names every backup and the data directory: only the repository's owner reads it.
 * SQLite creates files with the process umask (0644 as a rule) and gives its -wal and -shm files
 * the database file's mode, so the file is created 0600 before SQLite opens it, and a catalog
 * written by an older pgkeep is tightened.
 */
function ensurePrivateFile(path: string): void {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) closeSync(openSync(path, 'a', 0o600));
  else if ((st.mode & 0o077) !== 0) chmodSync(path, 0o600);
}

const REBUILD_HINT = 'recreate it from the repository with `pgkeep catalog rebuild` (it sets the damaged file aside)';

/**
 * For `catalog rebuild`: if the catalog at `path` cannot be opened (damaged), rename it and its
 * -wal/-shm files to `<path>.damaged-<time>` so that a new one can be created. Returns the new
 * name, or undefined when the file opens (or does not exist).
 */
export function setAsideDamagedCatalog(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  try {
    openCatalog(path, { mustExist: true }).close();
    return undefined;
  } catch (e) {
    if (!(e instanceof PgkeepError) || e.code !== 'CATALOG_CORRUPT') throw e;
  }
  const aside = `${path}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  }
  return aside;
}

/** A read-only connection cannot migrate: refuse a catalog that is behind this program. */
function assertCurrentSchema(db: Database.Database, dir: string): void {
  const known = readMigrations(dir);
  const pending = pendingMigrations(db, known);
  const first = pending[0];
  if (first) {
    throw new PgkeepError('CATALOG_MIGRATION', `catalog schema is older than this pgkeep (needs migration ${String(first.version).padStart(3, '0')}_${first.name}) and it was opened read-only`, 'run any pgkeep command that writes to this repository once, to upgrade the catalog');
  }
}

function openError(e: unknown, path: string): unknown {
  if (e instanceof PgkeepError) return e;
  const code = errnoCode(e);
  const detail = errorMessage(e);
  if (code === 'SQLITE_NOTADB' || code?.startsWith('SQLITE_CORRUPT')) {
    return new PgkeepError('CATALOG_CORRUPT', `catalog ${path} is damaged: ${detail}`, REBUILD_HINT, { cause: e });
  }
  if (code === 'SQLITE_BUSY') {
    return new PgkeepError('LOCKED', `catalog ${path} stayed locked by another process for ${BUSY_TIMEOUT_MS / 1000}s`, 'wait for the other pgkeep command to finish, then run this one again', { cause: e });
  }
  return new PgkeepError('IO_ERROR', `could not open catalog ${path}: ${detail}`, undefined, { cause: e });
}

/**
 * Narrows a listing in SQL: a backup runs several of these, and a repository that keeps a long
 * history of frequent backups (a thousand rows took 15-40 ms to read whole) should not pay for
 * rows it does not want. Each given field must match.
 */
export interface BackupFilter {
  statuses?: readonly BackupStatus[];
  mode?: BackupMode;
  timeline?: number;
  compressAlg?: CompressAlg;
  /** Only backups that recorded their data directory's size (pgdata_bytes > 0). */
  sized?: boolean;
}

const BACKUP_SELECT = `SELECT ${BACKUP_COLUMNS.join(', ')} FROM backups`;
const NEWEST_FIRST = 'ORDER BY start_time DESC, id DESC';
const OLDEST_FIRST = 'ORDER BY start_time, id';

export class Catalog {
  private readonly statements = new Map<string, Database.Statement>();

  /** Use openCatalog(): it sets the pragmas and migrates. */
  constructor(
    private readonly db: Database.Database,
    /** Opened with { readonly: true }: transactions are deferred, writes fail. */
    readonly readOnly: boolean,
  ) {}

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  /**
   * Run `fn` in one transaction: all of its writes commit together or not at all. Nested calls
   * become savepoints. `fn` must be synchronous. An async function would commit at its first
   * await, before the rest of its work.
   */
  transaction<T>(fn: () => T): T {
    const tx = this.db.transaction(fn);
    return this.readOnly ? tx() : tx.immediate();
  }

  // ---- instances ----

  insertInstance(cfg: InstanceRow): void {
    try {
      this.stmt(`INSERT INTO instances (name, pgdata, system_identifier, server_version_num, block_size, wal_seg_size, connection_json, settings_json, created_at)
        VALUES (@name, @pgdata, @system_identifier, @server_version_num, @block_size, @wal_seg_size, @connection_json, @settings_json, @created_at)`).run(instanceToColumns(cfg));
    } catch (e) {
      if (errnoCode(e) === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new PgkeepError('INSTANCE_EXISTS', `instance "${cfg.name}" already exists`, 'choose another --instance name, or remove the old one first', { cause: e });
      }
      throw e;
    }
  }

  getInstance(name: string): InstanceRow | undefined {
    const row = this.stmt(`SELECT * FROM instances WHERE name = ?`).get(name) as InstanceColumns | undefined;
    return row === undefined ? undefined : instanceFromColumns(row);
  }

  requireInstance(name: string): InstanceRow {
    const row = this.getInstance(name);
    if (!row) throw instanceNotFound(name);
    return row;
  }

  listInstances(): InstanceRow[] {
    const rows = this.stmt(`SELECT * FROM instances ORDER BY name`).all() as InstanceColumns[];
    return rows.map(instanceFromColumns);
  }

  /** Rewrite every field of an existing instance except its name and creation time. */
  updateInstance(cfg: InstanceRow): void {
    const { created_at: _createdAt, ...cols } = instanceToColumns(cfg);
    const result = this.stmt(`UPDATE instances SET pgdata = @pgdata, system_identifier = @system_identifier,
        server_version_num = @server_version_num, block_size = @block_size, wal_seg_size = @wal_seg_size,
        connection_json = @connection_json, settings_json = @settings_json
      WHERE name = @name`).run(cols);
    if (result.changes === 0) throw instanceNotFound(cfg.name);
  }

  /** Remove an instance and, by ON DELETE CASCADE, all its backup rows. False if it was absent. */
  deleteInstance(name: string): boolean {
    return this.stmt(`DELETE FROM instances WHERE name = ?`).run(name).changes > 0;
  }

  // ---- backups ----

  insertBackup(r: BackupRecord): void {
    try {
      this.stmt(`INSERT INTO backups (${BACKUP_COLUMNS.join(', ')}) VALUES (${BACKUP_COLUMNS.map((c) => `@${c}`).join(', ')})`).run(backupToColumns(r));
    } catch (e) {
      throw this.backupWriteError(e, r);
    }
  }

  /**
   * Insert, or overwrite every column of the existing row. `catalog rebuild` uses this because
   * backup.json is authoritative, and so do status rewrites that carry a whole record.
   */
  upsertBackup(r: BackupRecord): void {
    const updates = BACKUP_COLUMNS.filter((c) => c !== 'instance' && c !== 'id').map((c) => `${c} = excluded.${c}`);
    try {
      this.stmt(`INSERT INTO backups (${BACKUP_COLUMNS.join(', ')}) VALUES (${BACKUP_COLUMNS.map((c) => `@${c}`).join(', ')})
        ON CONFLICT (instance, id) DO UPDATE SET ${updates.join(', ')}`).run(backupToColumns(r));
    } catch (e) {
      throw this.backupWriteError(e, r);
    }
  }

  getBackup(instance: string, id: string): BackupRecord | undefined {
    const row = this.stmt(`${BACKUP_SELECT} WHERE instance = ? AND id = ?`).get(instance, id) as BackupColumns | undefined;
    return row === undefined ? undefined : backupFromColumns(row);
  }

  requireBackup(instance: string, id: string): BackupRecord {
    const r = this.getBackup(instance, id);
    if (!r) {
      throw new PgkeepError('BACKUP_NOT_FOUND', `backup ${id} not found in instance "${instance}"`, `list backups with \`pgkeep show --instance ${instance}\``);
    }
    return r;
  }

  /**
   * A backup by id alone, in any instance. Ids are unique in practice (time-based), but only
   * (instance, id) is a key. If the id appears twice, the newest match wins.
   */
  findBackupById(id: string): BackupRecord | undefined {
    const row = this.stmt(`${BACKUP_SELECT} WHERE id = ? ${NEWEST_FIRST}, instance LIMIT 1`).get(id) as BackupColumns | undefined;
    return row === undefined ? undefined : backupFromColumns(row);
  }

  /** Backups of one instance, or of all of them, newest first (start time, then id); those `filter` lets through. */
  listBackups(instance?: string, filter: BackupFilter = {}): BackupRecord[] {
    const { where, params } = filterClause(instance, filter);
    const rows = this.stmt(`${BACKUP_SELECT}${where} ${NEWEST_FIRST}${instance === undefined ? ', instance' : ''}`).all(...params) as BackupColumns[];
    return rows.map(backupFromColumns);
  }

  /** The newest backup of the instance that `filter` lets through. */
  newestBackup(instance: string, filter: BackupFilter = {}): BackupRecord | undefined {
    const { where, params } = filterClause(instance, filter);
    const row = this.stmt(`${BACKUP_SELECT}${where} ${NEWEST_FIRST} LIMIT 1`).get(...params) as BackupColumns | undefined;
    return row === undefined ? undefined : backupFromColumns(row);
  }

  /** The ids of the instance's backups, whatever their status. */
  backupIds(instance: string): string[] {
    return this.stmt('SELECT id FROM backups WHERE instance = ?').pluck().all(instance) as string[];
  }

  /**
   * The OK or DONE backup of `timeline` that stopped last at or before `lsn` and knows its
   * recovery point (recovery_time and recovery_xid), other than `exceptId`.
   */
  latestRecoveryPointBy(instance: string, timeline: number, lsn: Lsn, exceptId: string): BackupRecord | undefined {
    const row = this.stmt(`${BACKUP_SELECT} WHERE instance = ? AND timeline = ? AND status IN ('OK', 'DONE') AND id <> ?
      AND stop_lsn_hex <= ? AND recovery_time IS NOT NULL AND recovery_xid IS NOT NULL ORDER BY stop_lsn_hex DESC, id DESC LIMIT 1`)
      .get(instance, timeline, exceptId, sortableLsn(lsn)) as BackupColumns | undefined;
    return row === undefined ? undefined : backupFromColumns(row);
  }

  /**
   * Set a backup's status. `error` undefined leaves the recorded error as it is, null clears it,
   * a string replaces it.
   */
  updateStatus(instance: string, id: string, status: BackupStatus, error?: string | null): void {
    const result =
      error === undefined
        ? this.stmt(`UPDATE backups SET status = ? WHERE instance = ? AND id = ?`).run(status, instance, id)
        : this.stmt(`UPDATE backups SET status = ?, error = ? WHERE instance = ? AND id = ?`).run(status, error, instance, id);
    if (result.changes === 0) this.requireBackup(instance, id);
  }

  /** Remove one backup row. Its children stay (they become ORPHANs). False if it was absent. */
  deleteBackup(instance: string, id: string): boolean {
    return this.stmt(`DELETE FROM backups WHERE instance = ? AND id = ?`).run(instance, id).changes > 0;
  }

  /** Direct children, oldest first. */
  childrenOf(instance: string, id: string): BackupRecord[] {
    const rows = this.stmt(`${BACKUP_SELECT} WHERE instance = ? AND parent_id = ? ${OLDEST_FIRST}`).all(instance, id) as BackupColumns[];
    return rows.map(backupFromColumns);
  }

  /**
   * Every backup that depends on `id`, at any depth, oldest first. A child starts after its
   * parent, so parents come before their children. Reverse the list to delete leaves first.
   * UNION (not UNION ALL) stops the walk even if a corrupt backup.json made a cycle.
   */
  descendantsOf(instance: string, id: string): BackupRecord[] {
    const rows = this.stmt(`WITH RECURSIVE d(id) AS (
        SELECT id FROM backups WHERE instance = @instance AND parent_id = @id
        UNION
        SELECT b.id FROM backups b JOIN d ON b.parent_id = d.id WHERE b.instance = @instance
      )
      ${BACKUP_SELECT} WHERE instance = @instance AND id IN (SELECT id FROM d) AND id <> @id ${OLDEST_FIRST}`).all({ instance, id }) as BackupColumns[];
    return rows.map(backupFromColumns);
  }

  /** Empty the index (all instances and backups) in one transaction, before a rebuild refills it. */
  clear(): void {
    this.transaction(() => {
      this.stmt(`DELETE FROM backups`).run();
      this.stmt(`DELETE FROM instances`).run();
    });
  }

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private backupWriteError(e: unknown, r: BackupRecord): unknown {
    switch (errnoCode(e)) {
      case 'SQLITE_CONSTRAINT_FOREIGNKEY':
        return instanceNotFound(r.instance);
      case 'SQLITE_CONSTRAINT_PRIMARYKEY':
        return new PgkeepError('INTERNAL', `backup ${r.id} is already in the catalog for instance "${r.instance}"`, undefined, { cause: e });
      default:
        return e;
    }
  }
}

function instanceNotFound(name: string): PgkeepError {
  return new PgkeepError('INSTANCE_NOT_FOUND', `instance "${name}" not found in the catalog`, 'list instances with `pgkeep show`, or add one with `pgkeep add-instance`');
}

/** The WHERE clause (with a leading space, or empty) and its parameters for an instance and a filter. */
function filterClause(instance: string | undefined, f: BackupFilter): { where: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (instance !== undefined) {
    conditions.push('instance = ?');
    params.push(instance);
  }
  if (f.statuses !== undefined) {
    conditions.push(f.statuses.length === 0 ? '0' : `status IN (${f.statuses.map(() => '?').join(', ')})`);
    params.push(...f.statuses);
  }
  if (f.mode !== undefined) {
    conditions.push('mode = ?');
    params.push(f.mode);
  }
  if (f.timeline !== undefined) {
    conditions.push('timeline = ?');
    params.push(f.timeline);
  }
  if (f.compressAlg !== undefined) {
    conditions.push('compress_alg = ?');
    params.push(f.compressAlg);
  }
  if (f.sized) conditions.push('pgdata_bytes > 0');
  return { where: conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '', params };
}
