import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BackupRecord, FileEntry } from '../../src/core/backup-types.js';
import { listBackupIds, readBackupControl, writeBackupControl } from '../../src/repository/backup-control.js';
import { backupControlKey, manifestKey } from '../../src/repository/layout.js';
import { readManifest, readManifestEntries, writeManifest } from '../../src/repository/manifest.js';
import { PosixStore } from '../../src/storage/posix-store.js';

function record(over: Partial<BackupRecord> = {}): BackupRecord {
  return {
    id: 'T1ABCD',
    instance: 'main',
    mode: 'DELTA',
    status: 'DONE',
    parentId: 'T0AAAA',
    timeline: 3,
    startLsn: 0x1_2345_6789_abcdn, // past 2^53: must not go through a JS number
    stopLsn: 0x1_2345_6789_ffffn,
    startTime: new Date('2026-01-02T03:04:05.678Z'),
    endTime: new Date('2026-01-02T03:14:05.000Z'),
    recoveryTime: null,
    recoveryXid: '12345',
    dataBytes: 100,
    storedBytes: 50,
    pgdataBytes: 1000,
    walBytes: 16777216,
    compressAlg: 'zstd',
    compressLevel: 3,
    stream: true,
    serverVersion: '17.2',
    serverVersionNum: 170002,
    programVersion: '0.1.0',
    note: 'before upgrade',
    systemIdentifier: '7301234567890123456',
    blockSize: 8192,
    walSegSize: 16777216,
    checksumsEnabled: true,
    ownerPid: null,
    ownerHost: 'db1',
    changeSource: 'lsn-scan',
    error: null,
    metrics: { readBytes: 123, seconds: 1.5 },
    generation: 0,
    ...over,
  };
}

const entries: FileEntry[] = [
  { path: 'global/pg_control', kind: 'file', mode: 0o600, mtimeMs: 1700000000123, size: 8192, storage: 'full', storedSize: 300, storedChecksum: '00000000000000ab', checksum: '0123456789abcdef', compressAlg: 'zstd' },
  { path: 'base/5/1259', kind: 'data', mode: 0o600, mtimeMs: 1700000000000, size: 16384, storage: 'delta', storedSize: 8300, storedChecksum: 'ffffffffffffffff', checksum: 'fedcba9876543210', compressAlg: 'zstd', blocks: 2, deltaBlocks: 1 },
  { path: 'base', kind: 'dir', mode: 0o700, mtimeMs: 1700000000000, size: 0, storage: 'none', storedSize: 0, storedChecksum: null, checksum: null, compressAlg: 'none' },
  { path: 'pg_tblspc/16384', kind: 'symlink', mode: 0o777, mtimeMs: 1700000000000, size: 0, storage: 'none', storedSize: 0, storedChecksum: null, checksum: null, compressAlg: 'none', linkTarget: '/srv/ts1' },
  { path: 'base/5/2619', kind: 'data', mode: 0o600, mtimeMs: 1700000000000, size: 8192, storage: 'parent', storedSize: 0, storedChecksum: null, checksum: '1111111111111111', compressAlg: 'zstd', blocks: 1 },
];
const sortedPaths = ['base', 'base/5/1259', 'base/5/2619', 'global/pg_control', 'pg_tblspc/16384'];

describe('manifest and backup.json', () => {
  let dir: string;
  let store: PosixStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-manifest-'));
    store = new PosixStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const manifestPath = (): string => join(dir, manifestKey('main', 'T1ABCD'));

  it('round-trips a manifest, entries sorted by path', async () => {
    const r = record();
    await writeManifest(store, r, entries);
    const m = await readManifest(store, 'main', 'T1ABCD');
    expect(m.backup).toEqual(r);
    expect(m.files.map((f) => f.path)).toEqual(sortedPaths);
    for (const e of entries) expect(m.files.find((f) => f.path === e.path)).toEqual(e);
    const streamed: FileEntry[] = [];
    for await (const e of readManifestEntries(store, 'main', 'T1ABCD')) streamed.push(e);
    expect(streamed).toEqual(m.files);

    const lines = (await readFile(manifestPath(), 'utf8')).split('\n');
    expect(lines).toHaveLength(entries.length + 3); // header, entries, trailer, final ''
    expect(JSON.parse(lines[0] as string)).toMatchObject({ formatVersion: 1, kind: 'pgkeep-manifest', backup: { startLsn: '12345/6789ABCD' } });
    expect(JSON.parse(lines[entries.length + 1] as string)).toMatchObject({ end: true, files: entries.length, xxh64: expect.stringMatching(/^[0-9a-f]{16}$/) });
  });

  it('round-trips an empty manifest and a large one', async () => {
    await writeManifest(store, record(), []);
    expect((await readManifest(store, 'main', 'T1ABCD')).files).toEqual([]);
    const many: FileEntry[] = [];
    for (let i = 0; i < 5000; i++) many.push({ ...(entries[0] as FileEntry), path: `base/5/${100000 + i}` });
    await writeManifest(store, record({ id: 'T2BIG' }), many);
    expect((await readManifest(store, 'main', 'T2BIG')).files).toHaveLength(5000);
  });

  it('reads a manifest of several chunks with multi-byte paths, and refuses a change in a later chunk', async () => {
    // Over 1 MiB (READ_CHUNK_SIZE), so that lines span chunks; paths of two- and three-byte
    // UTF-8 characters, so that a line's bytes and characters differ in number.
    const many: FileEntry[] = [];
    for (let i = 0; i < 6000; i++) many.push({ ...(entries[0] as FileEntry), path: `base/5/tbl_é€_${String(100000 + i)}` });
    await writeManifest(store, record(), many);
    const text = await readFile(manifestPath(), 'utf8');
    expect(Buffer.byteLength(text)).toBeGreaterThan(1024 * 1024 + 1000);
    const read = await readManifest(store, 'main', 'T1ABCD');
    expect(read.files.map((f) => f.path)).toEqual(many.map((f) => f.path));
    const streamed: string[] = [];
    for await (const e of readManifestEntries(store, 'main', 'T1ABCD')) streamed.push(e.path);
    expect(streamed).toEqual(read.files.map((f) => f.path));

    // A space added to a path near the end (past the first chunk): valid JSON, still in order.
    const edited = text.replace('"path":"base/5/tbl_é€_105990"', '"path":"base/5/tbl_é€_105990 "');
    expect(edited).not.toBe(text);
    await writeFile(manifestPath(), edited);
    await expect(readManifest(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('checksum') });
  });

  /** The names in the backup's directory (none before its first file). */
  const backupDirNames = async (): Promise<string[]> => readdir(join(dir, 'instances/main/backups/T1ABCD')).catch(() => []);

  it('with commitAfter: written meanwhile, put in place only once it settles', async () => {
    let settle!: () => void;
    const synced = new Promise<void>((resolve) => (settle = resolve));
    const writing = writeManifest(store, record(), entries, synced);
    // Until its lines are written: the temporary file exists, the manifest not yet.
    for (let i = 0; i < 200 && !(await backupDirNames()).some((n) => n.startsWith('manifest.jsonl.tmp.')); i++) await sleep(5);
    await sleep(50);
    const names = await backupDirNames();
    expect(names.some((n) => n.startsWith('manifest.jsonl.tmp.'))).toBe(true);
    expect(names).not.toContain('manifest.jsonl');
    settle();
    await writing;
    expect((await readManifest(store, 'main', 'T1ABCD')).files.map((f) => f.path)).toEqual(sortedPaths);
    expect((await backupDirNames()).filter((n) => n.includes('.tmp.'))).toEqual([]);
  });

  it('with commitAfter rejected: no manifest, no temporary file, its error thrown', async () => {
    const failed = Promise.reject(new Error('fsync failed: EIO'));
    await expect(writeManifest(store, record(), entries, failed)).rejects.toThrow('fsync failed: EIO');
    expect(await store.exists(manifestKey('main', 'T1ABCD'))).toBe(false);
    expect((await backupDirNames()).filter((n) => n.includes('.tmp.'))).toEqual([]);
    // A failure of its own comes first, and the rejected promise is not left unhandled.
    await expect(writeManifest(store, record(), [entries[0] as FileEntry, entries[0] as FileEntry], Promise.reject(new Error('late')))).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('refuses duplicate paths on write', async () => {
    await expect(writeManifest(store, record(), [entries[0] as FileEntry, entries[0] as FileEntry])).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(await store.exists(manifestKey('main', 'T1ABCD'))).toBe(false);
  });

  it('refuses a manifest with a modified line', async () => {
    await writeManifest(store, record(), entries);
    const text = await readFile(manifestPath(), 'utf8');
    const changed = text.replace('"size":16384', '"size":16385');
    expect(changed).not.toBe(text);
    await writeFile(manifestPath(), changed);
    await expect(readManifest(store, 'main', 'T1ABCD')).rejects.toMatchObject({
      code: 'MANIFEST_CORRUPT',
      message: expect.stringContaining('manifest.jsonl'),
      hint: expect.stringContaining('pgkeep validate'),
    });
  });

  it('refuses a manifest without its trailer', async () => {
    await writeManifest(store, record(), entries);
    const lines = (await readFile(manifestPath(), 'utf8')).split('\n');
    await writeFile(manifestPath(), `${lines.slice(0, -2).join('\n')}\n`);
    await expect(readManifest(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('trailer') });
  });

  it('refuses a removed entry even with the trailer kept', async () => {
    await writeManifest(store, record(), entries);
    const lines = (await readFile(manifestPath(), 'utf8')).split('\n');
    lines.splice(2, 1);
    await writeFile(manifestPath(), lines.join('\n'));
    await expect(readManifest(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('counts') });
  });

  it('refuses an entry whose path leaves the data directory', async () => {
    await writeManifest(store, record(), entries);
    const text = await readFile(manifestPath(), 'utf8');
    await writeFile(manifestPath(), text.replace('"path":"pg_tblspc/16384"', '"path":"../../etc/passwd"'));
    await expect(readManifest(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('unsafe') });
  });

  it('refuses a missing manifest', async () => {
    await expect(readManifest(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('missing') });
  });

  it('round-trips backup.json and rewrites it atomically', async () => {
    const r = record({ status: 'RUNNING', stopLsn: null, endTime: null, metrics: null, ownerPid: 4242, parentId: null });
    await writeBackupControl(store, r);
    expect(await readBackupControl(store, 'main', 'T1ABCD')).toEqual(r);
    const done = { ...r, status: 'DONE' as const, stopLsn: 0x10n, endTime: new Date('2026-01-02T04:00:00Z') };
    await writeBackupControl(store, done);
    expect(await readBackupControl(store, 'main', 'T1ABCD')).toEqual(done);
    const json = JSON.parse(await readFile(join(dir, backupControlKey('main', 'T1ABCD')), 'utf8'));
    expect(json).toMatchObject({ formatVersion: 1, stopLsn: '0/10', startTime: '2026-01-02T03:04:05.678Z' });
  });

  it('keeps blockValidationSkipped, and reads a backup.json written before it as checked', async () => {
    const skipped = record({ blockValidationSkipped: true });
    await writeBackupControl(store, skipped);
    expect(await readBackupControl(store, 'main', 'T1ABCD')).toEqual(skipped);
    const path = join(dir, backupControlKey('main', 'T1ABCD'));
    const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(json.blockValidationSkipped).toBe(true);
    delete json.blockValidationSkipped;
    await writeFile(path, JSON.stringify(json));
    const old = await readBackupControl(store, 'main', 'T1ABCD');
    expect(old.blockValidationSkipped).toBeUndefined();
    expect(old).toEqual(record());
  });

  it('refuses a broken backup.json naming it, and a newer format version', async () => {
    await writeBackupControl(store, record());
    const path = join(dir, backupControlKey('main', 'T1ABCD'));
    const good = await readFile(path, 'utf8');
    await writeFile(path, good.replace('"startLsn": "12345/6789ABCD"', '"startLsn": "nope"'));
    await expect(readBackupControl(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('backup.json') });
    await writeFile(path, good.slice(0, 40));
    await expect(readBackupControl(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('backup.json') });
    await writeFile(path, good.replace('"formatVersion": 1', '"formatVersion": 2'));
    await expect(readBackupControl(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'REPO_FORMAT_UNSUPPORTED' });
  });

  it('reports a missing backup.json as BACKUP_NOT_FOUND and lists backup ids', async () => {
    await expect(readBackupControl(store, 'main', 'NOPE')).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    expect(await listBackupIds(store, 'main')).toEqual([]);
    await writeBackupControl(store, record({ id: 'B2' }));
    await writeBackupControl(store, record({ id: 'A1' }));
    expect(await listBackupIds(store, 'main')).toEqual(['A1', 'B2']);
  });
});
