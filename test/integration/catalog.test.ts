/**
 * The catalog adapter against a real SQLite file: exact round trips of instances and backups,
 * ordering, chain walks, the instance cascade, and visibility across connections (WAL).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BackupFilter, type Catalog, type InstanceRow, openCatalog } from '../../src/catalog/catalog.js';
import type { BackupRecord } from '../../src/core/backup-types.js';
import { parseLsn } from '../../src/core/lsn.js';
import { PgkeepError } from '../../src/errors.js';

let tmp: string;
let path: string;
let catalog: Catalog;
const others: Catalog[] = [];

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pgkeep-catalog-'));
  path = join(tmp, 'catalog.db');
  catalog = openCatalog(path);
});
afterEach(() => {
  for (const c of others.splice(0)) c.close();
  catalog.close();
  rmSync(tmp, { recursive: true, force: true });
});

function instance(name: string, over: Partial<InstanceRow> = {}): InstanceRow {
  return {
    name,
    pgdata: `/var/lib/postgresql/17/${name}`,
    systemIdentifier: '7412345678901234567', // above 2^53: must stay exact
    serverVersionNum: 170004,
    blockSize: 8192,
    walSegSize: 16 * 1024 * 1024,
    connection: { host: '/run/postgresql', port: 5433, user: 'backup', dbname: 'postgres' },
    settings: { 'retention-redundancy': '2', 'compress-algorithm': 'zstd' },
    createdAt: new Date('2026-03-01T10:00:00.123Z'),
    ...over,
  };
}

function backup(id: string, over: Partial<BackupRecord> = {}): BackupRecord {
  return {
    id,
    instance: 'main',
    mode: 'FULL',
    status: 'OK',
    parentId: null,
    timeline: 1,
    startLsn: parseLsn('0/2000028'),
    stopLsn: parseLsn('0/2000100'),
    startTime: new Date('2026-03-02T00:00:00.000Z'),
    endTime: new Date('2026-03-02T00:05:00.000Z'),
    recoveryTime: new Date('2026-03-02T00:04:59.500Z'),
    recoveryXid: '7531',
    dataBytes: 1_000_000,
    storedBytes: 400_000,
    pgdataBytes: 1_200_000,
    walBytes: 16_777_216,
    compressAlg: 'zstd',
    compressLevel: 3,
    stream: true,
    serverVersion: '17.4',
    serverVersionNum: 170004,
    programVersion: '0.1.0',
    note: 'before upgrade',
    systemIdentifier: '7412345678901234567',
    blockSize: 8192,
    walSegSize: 16 * 1024 * 1024,
    checksumsEnabled: true,
    ownerPid: 4242,
    ownerHost: 'db1',
    changeSource: 'wal-summary',
    error: 'previous attempt failed',
    metrics: { bytesRead: 1_000_000, throughputMBps: 123.5 },
    generation: 0,
    ...over,
  };
}

function expectCode(fn: () => unknown, code: string): PgkeepError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PgkeepError);
  expect((caught as PgkeepError).code).toBe(code);
  return caught as PgkeepError;
}

const ids = (rs: BackupRecord[]): string[] => rs.map((r) => r.id);

describe('instances', () => {
  it('round-trip every field', () => {
    const main = instance('main');
    catalog.insertInstance(main);
    expect(catalog.getInstance('main')).toEqual(main);
    expect(catalog.requireInstance('main').createdAt).toBeInstanceOf(Date);

    const bare = instance('bare', { connection: {}, settings: {} });
    catalog.insertInstance(bare);
    expect(catalog.listInstances()).toEqual([bare, main]);
  });

  it('update rewrites fields but not the creation time', () => {
    catalog.insertInstance(instance('main'));
    const changed = instance('main', {
      pgdata: '/srv/pg',
      systemIdentifier: '1',
      serverVersionNum: 180000,
      blockSize: 16384,
      walSegSize: 64 * 1024 * 1024,
      connection: { port: 6000 },
      settings: { x: 'y' },
      createdAt: new Date('2030-01-01T00:00:00Z'),
    });
    catalog.updateInstance(changed);
    expect(catalog.getInstance('main')).toEqual({ ...changed, createdAt: new Date('2026-03-01T10:00:00.123Z') });
    expectCode(() => catalog.updateInstance(instance('ghost')), 'INSTANCE_NOT_FOUND');
  });

  it('refuses a duplicate and reports a missing one', () => {
    catalog.insertInstance(instance('main'));
    expectCode(() => catalog.insertInstance(instance('main')), 'INSTANCE_EXISTS');
    expect(catalog.getInstance('ghost')).toBeUndefined();
    const err = expectCode(() => catalog.requireInstance('ghost'), 'INSTANCE_NOT_FOUND');
    expect(err.hint).toMatch(/pgkeep show/);
    expect(catalog.deleteInstance('ghost')).toBe(false);
  });
});

describe('backups', () => {
  beforeEach(() => {
    catalog.insertInstance(instance('main'));
  });

  it('round-trip every field, LSNs above 2^53 included', () => {
    const big = backup('B1', { startLsn: parseLsn('FFFFFFFF/FFFFFFF0'), stopLsn: parseLsn('FFFFFFFF/FFFFFFFF'), expireTime: new Date('2027-01-01T00:00:00.000Z'), blockValidationSkipped: true });
    expect(big.startLsn > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    catalog.insertBackup(big);
    const back = catalog.getBackup('main', 'B1');
    expect(back).toEqual(big);
    expect(back?.startLsn).toBe(0xfffffffffffffff0n);
    expect(back?.stopLsn).toBe(0xffffffffffffffffn);
  });

  it('round-trip null fields and false booleans', () => {
    const sparse = backup('B2', {
      mode: 'DELTA',
      status: 'RUNNING',
      parentId: 'B1',
      stopLsn: null,
      endTime: null,
      recoveryTime: null,
      recoveryXid: null,
      note: null,
      ownerPid: null,
      ownerHost: null,
      changeSource: null,
      error: null,
      metrics: null,
      stream: false,
      checksumsEnabled: false,
      compressAlg: 'none',
      compressLevel: 0,
    });
    catalog.insertBackup(sparse);
    expect(catalog.getBackup('main', 'B2')).toEqual(sparse);
  });

  it('keeps a sortable form of the LSNs', () => {
    const lsns = ['FFFFFFFF/FFFFFFF0', '0/1A', '1/0', '0/FFFFFFFF', '80000000/0'];
    lsns.forEach((l, i) => catalog.insertBackup(backup(`L${i}`, { startLsn: parseLsn(l), stopLsn: parseLsn(l) })));
    const db = new Database(path, { readonly: true });
    const rows = db.prepare(`SELECT start_lsn, start_lsn_hex, stop_lsn_hex FROM backups ORDER BY start_lsn_hex`).all() as { start_lsn: string; start_lsn_hex: string; stop_lsn_hex: string }[];
    db.close();
    expect(rows.map((r) => r.start_lsn)).toEqual(['0/1A', '0/FFFFFFFF', '1/0', '80000000/0', 'FFFFFFFF/FFFFFFF0']);
    expect(rows[0]?.start_lsn_hex).toBe('000000000000001A');
    expect(rows[4]?.stop_lsn_hex).toBe('FFFFFFFFFFFFFFF0');
  });

  it('upsert inserts, then overwrites every column', () => {
    catalog.upsertBackup(backup('B1', { status: 'RUNNING' }));
    const rewritten = backup('B1', { status: 'ERROR', error: 'interrupted', stopLsn: null, metrics: null, note: null });
    catalog.upsertBackup(rewritten);
    expect(catalog.listBackups()).toEqual([rewritten]);
    expectCode(() => catalog.insertBackup(backup('B1')), 'INTERNAL');
  });

  it('refuses a backup of an unknown instance, and malformed values', () => {
    expectCode(() => catalog.insertBackup(backup('X', { instance: 'ghost' })), 'INSTANCE_NOT_FOUND');
    expect(() => catalog.insertBackup(backup('Y', { status: 'BOGUS' as never }))).toThrow(/CHECK constraint/);
    expect(catalog.listBackups()).toEqual([]);
  });

  it('require and find', () => {
    catalog.insertInstance(instance('other'));
    catalog.insertBackup(backup('B1', { instance: 'other' }));
    expect(catalog.getBackup('main', 'B1')).toBeUndefined();
    const err = expectCode(() => catalog.requireBackup('main', 'B1'), 'BACKUP_NOT_FOUND');
    expect(err.hint).toContain('pgkeep show --instance main');
    expect(catalog.findBackupById('B1')?.instance).toBe('other');
    expect(catalog.findBackupById('nope')).toBeUndefined();
  });

  it('lists newest first: start time, then id; one instance or all', () => {
    catalog.insertInstance(instance('other'));
    catalog.insertBackup(backup('A', { startTime: new Date('2026-03-01T00:00:00Z') }));
    catalog.insertBackup(backup('C', { startTime: new Date('2026-03-03T00:00:00Z') }));
    catalog.insertBackup(backup('B', { startTime: new Date('2026-03-03T00:00:00Z') }));
    catalog.insertBackup(backup('D', { startTime: new Date('2026-03-02T00:00:00Z') }));
    catalog.insertBackup(backup('O', { instance: 'other', startTime: new Date('2026-03-02T12:00:00Z') }));
    expect(ids(catalog.listBackups('main'))).toEqual(['C', 'B', 'D', 'A']);
    expect(ids(catalog.listBackups())).toEqual(['C', 'B', 'O', 'D', 'A']);
    expect(catalog.listBackups('ghost')).toEqual([]);
  });

  it('filters in SQL what filtering the whole list would give: listBackups, newestBackup, backupIds', () => {
    catalog.insertInstance(instance('other'));
    const statuses = ['OK', 'DONE', 'ERROR', 'RUNNING', 'ORPHAN'] as const;
    const modes = ['FULL', 'DELTA', 'PTRACK'] as const;
    const algs = ['zstd', 'none'] as const;
    for (let i = 0; i < 60; i++) {
      catalog.insertBackup(backup(`F${String(i).padStart(2, '0')}`, {
        instance: i % 7 === 0 ? 'other' : 'main',
        status: statuses[i % 5]!,
        mode: modes[i % 3]!,
        timeline: 1 + (i % 2),
        compressAlg: algs[(i >> 2) % 2]!,
        pgdataBytes: i % 11 === 0 ? 0 : 1000 + i,
        // Ties on the start time fall back to the id, as listBackups orders.
        startTime: new Date(Date.UTC(2026, 2, 1, 0, i % 13)),
      }));
    }
    const all = catalog.listBackups('main');
    const filters: BackupFilter[] = [
      {}, { statuses: ['RUNNING'] }, { statuses: ['OK', 'DONE'] }, { statuses: ['OK', 'DONE'], timeline: 2 }, { statuses: [] },
      { statuses: ['ERROR'], mode: 'DELTA' }, { statuses: ['DONE', 'OK'], compressAlg: 'none', sized: true, mode: 'FULL' }, { timeline: 3 },
    ];
    for (const f of filters) {
      const expected = all.filter((b) => (f.statuses === undefined || f.statuses.includes(b.status)) && (f.mode === undefined || b.mode === f.mode) &&
        (f.timeline === undefined || b.timeline === f.timeline) && (f.compressAlg === undefined || b.compressAlg === f.compressAlg) && (!f.sized || b.pgdataBytes > 0));
      expect(ids(catalog.listBackups('main', f)), JSON.stringify(f)).toEqual(ids(expected));
      expect(catalog.newestBackup('main', f)?.id, JSON.stringify(f)).toBe(expected[0]?.id);
    }
    expect(ids(catalog.listBackups(undefined, { statuses: ['RUNNING'] }))).toEqual(ids(catalog.listBackups().filter((b) => b.status === 'RUNNING')));
    expect(catalog.backupIds('main').sort()).toEqual(ids(all).sort());
    expect(catalog.backupIds('ghost')).toEqual([]);
  });

  it('finds the latest known recovery point at or before an LSN, by LSN order, not text order', () => {
    const at = (id: string, stop: string, over: Partial<BackupRecord> = {}) =>
      catalog.insertBackup(backup(id, { startLsn: parseLsn(stop) - 0x100n, stopLsn: parseLsn(stop), status: 'OK', timeline: 1, ...over }));
    at('P1', '0/9000000');
    at('P2', '0/10000000'); // after P1 as an LSN, before it as text
    at('P3', '0/18000000', { recoveryTime: null });
    at('P4', '0/20000000', { status: 'ERROR' });
    at('P5', '0/28000000', { timeline: 2 });
    at('P6', '1/0');
    expect(catalog.latestRecoveryPointBy('main', 1, parseLsn('0/30000000'), 'X')?.id).toBe('P2');
    expect(catalog.latestRecoveryPointBy('main', 1, parseLsn('0/10000000'), 'X')?.id).toBe('P2'); // at the LSN counts
    expect(catalog.latestRecoveryPointBy('main', 1, parseLsn('0/10000000'), 'P2')?.id).toBe('P1');
    expect(catalog.latestRecoveryPointBy('main', 1, parseLsn('0/8FFFFFF'), 'X')).toBeUndefined();
    expect(catalog.latestRecoveryPointBy('main', 2, parseLsn('2/0'), 'X')?.id).toBe('P5');
    expect(catalog.latestRecoveryPointBy('main', 1, parseLsn('2/0'), 'X')?.id).toBe('P6');
  });

  it('updates a status, keeping, setting or clearing the error', () => {
    catalog.insertBackup(backup('B1', { status: 'RUNNING', error: null }));
    catalog.updateStatus('main', 'B1', 'ERROR', 'disk full');
    expect(catalog.getBackup('main', 'B1')).toMatchObject({ status: 'ERROR', error: 'disk full' });
    catalog.updateStatus('main', 'B1', 'CORRUPT');
    expect(catalog.getBackup('main', 'B1')).toMatchObject({ status: 'CORRUPT', error: 'disk full' });
    catalog.updateStatus('main', 'B1', 'OK', null);
    expect(catalog.getBackup('main', 'B1')).toMatchObject({ status: 'OK', error: null });
    expectCode(() => catalog.updateStatus('main', 'nope', 'OK'), 'BACKUP_NOT_FOUND');
  });
});

describe('chains', () => {
  // F <- D1 <- D2 <- D3, and F <- S (a sibling branch of D1). Another instance reuses the ids.
  beforeEach(() => {
    catalog.insertInstance(instance('main'));
    catalog.insertInstance(instance('other'));
    const at = (h: number): Date => new Date(Date.UTC(2026, 2, 2, h));
    // Inserted children first: without a parent FK, order does not matter (as in a rebuild).
    catalog.insertBackup(backup('D3', { mode: 'DELTA', parentId: 'D2', startTime: at(4) }));
    catalog.insertBackup(backup('D2', { mode: 'PAGE', parentId: 'D1', startTime: at(3) }));
    catalog.insertBackup(backup('S', { mode: 'PTRACK', parentId: 'F', startTime: at(2) }));
    catalog.insertBackup(backup('D1', { mode: 'DELTA', parentId: 'F', startTime: at(1) }));
    catalog.insertBackup(backup('F', { startTime: at(0) }));
    catalog.insertBackup(backup('F', { instance: 'other', startTime: at(0) }));
    catalog.insertBackup(backup('X', { instance: 'other', mode: 'DELTA', parentId: 'D3', startTime: at(5) }));
  });

  it('childrenOf gives direct children, oldest first', () => {
    expect(ids(catalog.childrenOf('main', 'F'))).toEqual(['D1', 'S']);
    expect(ids(catalog.childrenOf('main', 'D3'))).toEqual([]);
  });

  it('descendantsOf walks every depth within the instance, parents first', () => {
    expect(ids(catalog.descendantsOf('main', 'D1'))).toEqual(['D2', 'D3']);
    expect(ids(catalog.descendantsOf('main', 'F'))).toEqual(['D1', 'S', 'D2', 'D3']);
    expect(ids(catalog.descendantsOf('main', 'S'))).toEqual([]);
    expect(ids(catalog.descendantsOf('other', 'F'))).toEqual([]);
  });

  it('descendantsOf terminates on a cycle from a corrupt record', () => {
    catalog.upsertBackup(backup('F', { parentId: 'D3', startTime: new Date(Date.UTC(2026, 2, 2, 0)) }));
    expect(ids(catalog.descendantsOf('main', 'D1'))).toEqual(['F', 'S', 'D2', 'D3']); // D1 itself is left out
  });

  it('deleting a parent keeps its children (to be marked ORPHAN)', () => {
    expect(catalog.deleteBackup('main', 'D1')).toBe(true);
    expect(catalog.deleteBackup('main', 'D1')).toBe(false);
    expect(catalog.getBackup('main', 'D2')?.parentId).toBe('D1');
    expect(ids(catalog.descendantsOf('main', 'F'))).toEqual(['S']);
  });

  it('deleting a whole chain in one transaction', () => {
    catalog.transaction(() => {
      for (const r of catalog.descendantsOf('main', 'F').reverse()) catalog.deleteBackup('main', r.id);
      catalog.deleteBackup('main', 'F');
    });
    expect(catalog.listBackups('main')).toEqual([]);
    expect(ids(catalog.listBackups('other'))).toEqual(['X', 'F']);
  });
});

describe('integrity and transactions', () => {
  it('foreign keys are on: deleting an instance removes its backups', () => {
    catalog.insertInstance(instance('main'));
    catalog.insertInstance(instance('other'));
    catalog.insertBackup(backup('B1'));
    catalog.insertBackup(backup('B2', { parentId: 'B1', mode: 'DELTA' }));
    catalog.insertBackup(backup('B1', { instance: 'other' }));
    expect(catalog.deleteInstance('main')).toBe(true);
    expect(catalog.listBackups('main')).toEqual([]);
    expect(catalog.getInstance('main')).toBeUndefined();
    expect(ids(catalog.listBackups())).toEqual(['B1']);
  });

  it('a transaction that throws leaves nothing behind', () => {
    catalog.insertInstance(instance('main'));
    expect(() =>
      catalog.transaction(() => {
        catalog.insertBackup(backup('B1'));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(catalog.listBackups()).toEqual([]);
    expect(catalog.transaction(() => 42)).toBe(42);
  });

  it('clear empties instances and backups but keeps the schema', () => {
    catalog.insertInstance(instance('main'));
    catalog.insertBackup(backup('B1'));
    catalog.clear();
    expect(catalog.listInstances()).toEqual([]);
    expect(catalog.listBackups()).toEqual([]);
    catalog.insertInstance(instance('main'));
    expect(catalog.listInstances()).toHaveLength(1);
  });
});

describe('concurrency', () => {
  it('runs in WAL mode; a second open connection sees committed data', () => {
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();

    const second = openCatalog(path);
    others.push(second);
    expect(second.listInstances()).toEqual([]); // opened (and read) before the write
    catalog.insertInstance(instance('main'));
    catalog.insertBackup(backup('B1'));
    expect(second.getBackup('main', 'B1')).toEqual(backup('B1'));

    // A read-only connection as well, and a write from the second connection seen by the first.
    const reader = openCatalog(path, { readonly: true });
    others.push(reader);
    second.updateStatus('main', 'B1', 'CORRUPT', 'checksum mismatch');
    expect(reader.getBackup('main', 'B1')?.status).toBe('CORRUPT');
    expect(catalog.getBackup('main', 'B1')?.error).toBe('checksum mismatch');
    expect(() => reader.insertInstance(instance('x'))).toThrow(/readonly/);
  });

  it('a reader inside a transaction keeps its snapshot while a writer commits', () => {
    catalog.insertInstance(instance('main'));
    const second = openCatalog(path);
    others.push(second);
    const db = new Database(path);
    db.exec('BEGIN');
    expect(db.prepare('SELECT count(*) AS n FROM backups').get()).toEqual({ n: 0 });
    second.insertBackup(backup('B1')); // not blocked by the open reader: WAL
    expect(db.prepare('SELECT count(*) AS n FROM backups').get()).toEqual({ n: 0 });
    db.exec('COMMIT');
    expect(db.prepare('SELECT count(*) AS n FROM backups').get()).toEqual({ n: 1 });
    db.close();
  });
});
