/**
 * The catalog's migration runner against real SQLite files: applies and records, applies nothing
 * twice, and refuses catalogs it cannot trust (newer, edited, gapped, out of order).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCatalog } from '../../src/catalog/catalog.js';
import { DEFAULT_MIGRATIONS_DIR, checksumOf, migrate, readApplied, readMigrations } from '../../src/catalog/migrator.js';
import { PgkeepError } from '../../src/errors.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pgkeep-migrator-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** A migrations directory of the given files, for tests that need their own history. */
function migrationsDir(files: Record<string, string>): string {
  const dir = join(tmp, `migrations-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
  return dir;
}

function tables(db: Database.Database): string[] {
  return (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
}

function expectPgkeepError(fn: () => unknown, code: string, message?: RegExp): PgkeepError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PgkeepError);
  const err = caught as PgkeepError;
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
  return err;
}

const TRACK = `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL, checksum TEXT NOT NULL);`;

describe('shipped migrations', () => {
  // What migrations/ ships; the tests follow it as migrations are added.
  const shipped = readMigrations().map((m) => m.version);
  const latest = shipped[shipped.length - 1]!;

  it('apply on a new file and are recorded with name, time and checksum', () => {
    const path = join(tmp, 'catalog.db');
    openCatalog(path).close();

    const db = new Database(path, { readonly: true });
    expect(tables(db)).toEqual(['backups', 'instances', 'schema_migrations']);
    const applied = readApplied(db);
    db.close();
    expect(applied.map((a) => a.version)).toEqual(shipped);
    const first = applied[0]!;
    expect(first.version).toBe(1);
    expect(first.name).toBe('initial');
    expect(first.checksum).toBe(checksumOf(readFileSync(join(DEFAULT_MIGRATIONS_DIR, '001_initial.sql'), 'utf8')));
    expect(new Date(first.appliedAt).toISOString()).toBe(first.appliedAt);
  });

  it('reopening applies nothing new', () => {
    const path = join(tmp, 'catalog.db');
    const db = new Database(path);
    expect(migrate(db, { now: () => new Date('2026-01-01T00:00:00Z') })).toEqual({ applied: shipped, version: latest });
    expect(migrate(db, { now: () => new Date('2027-01-01T00:00:00Z') })).toEqual({ applied: [], version: latest });
    expect(readApplied(db).map((a) => a.appliedAt)).toEqual(shipped.map(() => '2026-01-01T00:00:00.000Z'));
    db.close();
    // And through openCatalog, twice.
    openCatalog(path).close();
    openCatalog(path).close();
    const again = new Database(path, { readonly: true });
    expect(readApplied(again)).toHaveLength(shipped.length);
    again.close();
  });

  it('refuse a catalog with an applied version unknown to this program (CATALOG_NEWER)', () => {
    const path = join(tmp, 'catalog.db');
    openCatalog(path).close();
    const db = new Database(path);
    db.prepare(`INSERT INTO schema_migrations VALUES (999, 'from_the_future', '2030-01-01T00:00:00.000Z', 'x')`).run();
    db.close();

    const err = expectPgkeepError(() => openCatalog(path), 'CATALOG_NEWER', new RegExp(`^catalog schema version 999 is newer than this pgkeep \\(knows up to ${latest}\\)$`));
    expect(err.hint).toBe('upgrade pgkeep');
    expectPgkeepError(() => openCatalog(path, { readonly: true }), 'CATALOG_NEWER');
  });
});

describe('migrator guards', () => {
  it('applies pending files in order, one more when a new file appears', () => {
    const path = join(tmp, 'c.db');
    const dir = migrationsDir({ '001_track.sql': TRACK, '002_a.sql': 'CREATE TABLE a (x INTEGER);' });
    const db = new Database(path);
    expect(migrate(db, { dir })).toEqual({ applied: [1, 2], version: 2 });
    writeFileSync(join(dir, '003_b.sql'), 'CREATE TABLE b (y INTEGER REFERENCES a(x));');
    expect(migrate(db, { dir })).toEqual({ applied: [3], version: 3 });
    expect(readApplied(db).map((a) => `${a.version}:${a.name}`)).toEqual(['1:track', '2:a', '3:b']);
    expect(tables(db)).toEqual(['a', 'b', 'schema_migrations']);
    db.close();
  });

  it('refuses an applied migration whose text changed (CATALOG_MIGRATION)', () => {
    const path = join(tmp, 'c.db');
    const dir = migrationsDir({ '001_track.sql': TRACK, '002_a.sql': 'CREATE TABLE a (x INTEGER);' });
    const db = new Database(path);
    migrate(db, { dir });
    writeFileSync(join(dir, '002_a.sql'), 'CREATE TABLE a (x INTEGER, y TEXT);');
    expectPgkeepError(() => migrate(db, { dir }), 'CATALOG_MIGRATION', /002_a differs from the one applied/);
    // The same through openCatalog, which must also close the connection it opened.
    db.close();
    expectPgkeepError(() => openCatalog(path, { migrationsDir: dir }), 'CATALOG_MIGRATION');
  });

  it('ignores a change of line endings only', () => {
    const path = join(tmp, 'c.db');
    const dir = migrationsDir({ '001_track.sql': TRACK + '\n-- note\n' });
    const db = new Database(path);
    migrate(db, { dir });
    writeFileSync(join(dir, '001_track.sql'), TRACK + '\r\n-- note\r\n');
    expect(migrate(db, { dir }).applied).toEqual([]);
    db.close();
  });

  it('refuses a gap in the files, before applying anything', () => {
    const path = join(tmp, 'c.db');
    const dir = migrationsDir({ '001_track.sql': TRACK, '003_c.sql': 'CREATE TABLE c (x INTEGER);' });
    const db = new Database(path);
    expectPgkeepError(() => migrate(db, { dir }), 'CATALOG_MIGRATION', /migration 002 is missing/);
    expect(tables(db)).toEqual([]);
    db.close();
  });

  it('refuses two files with the same version, and a .sql file with a bad name', () => {
    const db = new Database(join(tmp, 'c.db'));
    const twice = migrationsDir({ '001_track.sql': TRACK, '002_a.sql': 'SELECT 1;', '002_b.sql': 'SELECT 2;' });
    expectPgkeepError(() => migrate(db, { dir: twice }), 'CATALOG_MIGRATION', /two migration files have version 002/);
    const badName = migrationsDir({ '001_track.sql': TRACK, '2_a.sql': 'SELECT 1;' });
    expectPgkeepError(() => migrate(db, { dir: badName }), 'CATALOG_MIGRATION', /not named NNN_name\.sql/);
    db.close();
  });

  it('refuses applied versions with a hole (out of order)', () => {
    const path = join(tmp, 'c.db');
    const dir = migrationsDir({ '001_track.sql': TRACK, '002_a.sql': 'SELECT 1;', '003_b.sql': 'SELECT 1;' });
    const db = new Database(path);
    migrate(db, { dir });
    db.prepare(`DELETE FROM schema_migrations WHERE version = 2`).run();
    expectPgkeepError(() => migrate(db, { dir }), 'CATALOG_MIGRATION', /records migration 003 but not 002/);
    db.close();
  });

  it('rolls a failing migration back whole and stays at the previous version', () => {
    const path = join(tmp, 'c.db');
    const dir = migrationsDir({ '001_track.sql': TRACK, '002_bad.sql': 'CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);' });
    const db = new Database(path);
    expectPgkeepError(() => migrate(db, { dir }), 'CATALOG_MIGRATION', /migration 002_bad failed/);
    expect(readApplied(db).map((a) => a.version)).toEqual([1]);
    expect(tables(db)).toEqual(['schema_migrations']);
    db.close();
  });

  it('a read-only open refuses a catalog that needs migrating, and does not change it', () => {
    const path = join(tmp, 'c.db');
    const dir = migrationsDir({ '001_track.sql': TRACK });
    openCatalog(path, { migrationsDir: dir }).close();
    writeFileSync(join(dir, '002_a.sql'), 'CREATE TABLE a (x INTEGER);');
    expectPgkeepError(() => openCatalog(path, { readonly: true, migrationsDir: dir }), 'CATALOG_MIGRATION', /needs migration 002_a/);
    const db = new Database(path, { readonly: true });
    expect(readApplied(db).map((a) => a.version)).toEqual([1]);
    db.close();
  });
});
