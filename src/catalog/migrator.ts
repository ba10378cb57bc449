/**
 * Forward-only schema migrations for the SQLite catalog.
 *
 * Migrations are files `NNN_name.sql` in migrations/ (three or more digits, numbered from 001
 * with no gaps). Each pending file runs in its own IMMEDIATE transaction together with its row
 * in schema_migrations, so a crash leaves the catalog at the previous version, never halfway.
 * The version, name, time and SHA-256 checksum of the text are recorded. There are no down
 * migrations: an older pgkeep refuses a newer catalog instead of guessing.
 *
 * Before anything runs, named guards check the state and refuse what cannot be trusted: a gap
 * in the files, a version applied in the catalog that this program does not know (a newer
 * pgkeep wrote it), an applied file whose text changed, and applied versions out of order.
 *
 * schema_migrations itself is created by 001_initial.sql, so that the whole schema is in the
 * files. A catalog without that table counts as having nothing applied.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { errorMessage, fromIoError, PgkeepError } from '../errors.js';

/** migrations/ next to dist/ and src/: both dist/catalog/ and src/catalog/ are two levels down. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** A migration file as this program knows it. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** A row of schema_migrations: a migration as the catalog recorded it. */
export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: string;
  checksum: string;
}

export interface MigrateOptions {
  /** Directory of NNN_name.sql files; tests pass their own. */
  dir?: string;
  /** Clock for applied_at. */
  now?: () => Date;
}

export interface MigrateResult {
  /** Versions applied by this call, in order. */
  applied: number[];
  /** Schema version of the catalog after the call. */
  version: number;
}

const FILE_NAME = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/** Read and checksum every migration file in `dir`, sorted by version. */
export function readMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Migration[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw fromIoError(e, 'read the migrations directory', dir);
  }
  const migrations: Migration[] = [];
  for (const file of names) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE_NAME.exec(file);
    // A .sql file that does not follow the pattern would never run. That is almost always a
    // typo in the file name, so refuse it rather than skip it.
    if (!m) throw new PgkeepError('CATALOG_MIGRATION', `migration file ${file} is not named NNN_name.sql`, `rename it in ${dir}`);
    const sql = readFileSync(join(dir, file), 'utf8');
    migrations.push({ version: Number(m[1]), name: m[2] ?? '', sql, checksum: checksumOf(sql) });
  }
  migrations.sort((a, b) => a.version - b.version);
  return migrations;
}

/**
 * SHA-256 of the migration text. CRLF is folded to LF first, so that a checkout with Windows
 * line endings does not look like an edited migration.
 */
export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n'), 'utf8').digest('hex');
}

/** Files must be numbered 1, 2, 3... with no version twice and none missing. */
export function assertNoGaps(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    const expected = i + 1;
    if (m.version === expected) return;
    if (m.version < expected) {
      throw new PgkeepError('CATALOG_MIGRATION', `two migration files have version ${pad(m.version)}`, 'each migration needs a version of its own; this pgkeep installation is broken, reinstall it');
    }
    throw new PgkeepError('CATALOG_MIGRATION', `migration ${pad(expected)} is missing (found ${pad(m.version)}_${m.name} after ${pad(expected - 1)})`, 'migrations are numbered without gaps; this pgkeep installation is broken, reinstall it');
  });
}

/** Every version the catalog recorded must be known to this program, or a newer pgkeep wrote it. */
export function assertAppliedStillPresent(applied: readonly AppliedMigration[], known: readonly Migration[]): void {
  const knownVersions = new Set(known.map((m) => m.version));
  const unknown = applied.filter((a) => !knownVersions.has(a.version));
  if (unknown.length === 0) return;
  const newest = Math.max(...applied.map((a) => a.version));
  const latestKnown = known.length === 0 ? 0 : Math.max(...known.map((m) => m.version));
  throw new PgkeepError('CATALOG_NEWER', `catalog schema version ${newest} is newer than this pgkeep (knows up to ${latestKnown})`, 'upgrade pgkeep');
}

/** An applied migration's text (and name) must not have changed since it ran. */
export function assertUnchanged(applied: readonly AppliedMigration[], known: readonly Migration[]): void {
  const byVersion = new Map(known.map((m) => [m.version, m]));
  for (const a of applied) {
    const m = byVersion.get(a.version);
    if (!m) continue; // assertAppliedStillPresent's concern
    if (m.name !== a.name || m.checksum !== a.checksum) {
      throw new PgkeepError('CATALOG_MIGRATION', `migration ${pad(a.version)}_${m.name} differs from the one applied to this catalog (${pad(a.version)}_${a.name}, checksum ${a.checksum.slice(0, 12)})`, 'released migrations must never change; reinstall pgkeep, or recreate the catalog with `pgkeep catalog rebuild`');
    }
  }
}

/**
 * Applied versions must be 1..K. A hole means a migration was skipped and a later one ran over
 * a schema it did not expect.
 */
export function assertAppliedInOrder(applied: readonly AppliedMigration[]): void {
  const versions = applied.map((a) => a.version).sort((a, b) => a - b);
  versions.forEach((v, i) => {
    if (v !== i + 1) {
      throw new PgkeepError('CATALOG_MIGRATION', `catalog records migration ${pad(v)} but not ${pad(i + 1)}`, 'the catalog was modified by hand; recreate it with `pgkeep catalog rebuild`');
    }
  });
}

/** What the catalog has recorded, oldest first; empty for a new file. */
export function readApplied(db: Database.Database): AppliedMigration[] {
  const table = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
  if (table === undefined) return [];
  return db.prepare(`SELECT version, name, applied_at AS appliedAt, checksum FROM schema_migrations ORDER BY version`).all() as AppliedMigration[];
}

/** Run every guard and return the migrations still to apply. Reads only. */
export function pendingMigrations(db: Database.Database, known: readonly Migration[]): Migration[] {
  assertNoGaps(known);
  const applied = readApplied(db);
  assertAppliedStillPresent(applied, known);
  assertAppliedInOrder(applied);
  assertUnchanged(applied, known);
  const done = new Set(applied.map((a) => a.version));
  return known.filter((m) => !done.has(m.version));
}

/** Bring the catalog to the newest schema this program knows. Safe to call on every open. */
export function migrate(db: Database.Database, opts: MigrateOptions = {}): MigrateResult {
  const known = readMigrations(opts.dir);
  const now = opts.now ?? (() => new Date());
  const applied: number[] = [];
  // Re-read the state inside each IMMEDIATE transaction: two processes opening a new catalog at
  // once must not both apply 001. The second waits on the lock (busy_timeout), then sees the
  // first one's row and has nothing left to do.
  const step = db.transaction((): boolean => {
    const next = pendingMigrations(db, known)[0];
    if (!next) return false;
    try {
      db.exec(next.sql);
    } catch (e) {
      throw new PgkeepError('CATALOG_MIGRATION', `migration ${pad(next.version)}_${next.name} failed: ${errorMessage(e)}`, 'the catalog is left at the previous version; recreate it with `pgkeep catalog rebuild` if this persists', { cause: e });
    }
    db.prepare(`INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES (?, ?, ?, ?)`).run(next.version, next.name, now().toISOString(), next.checksum);
    applied.push(next.version);
    return true;
  });
  while (step.immediate()) {
    // one migration per transaction
  }
  const version = readApplied(db).reduce((max, a) => Math.max(max, a.version), 0);
  return { applied, version };
}

function pad(version: number): string {
  return String(version).padStart(3, '0');
}
