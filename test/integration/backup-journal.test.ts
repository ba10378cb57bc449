// resume.jsonl on a real directory: what is appended reads back, a torn or damaged last line is
// left out (and everything after it), a damaged header is refused naming the file.
import { appendFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileEntry } from '../../src/core/backup-types.js';
import type { ResumeAttempt } from '../../src/core/resume-rules.js';
import { PgkeepError } from '../../src/errors.js';
import { BackupJournalWriter, FLUSH_LINES, readBackupJournal } from '../../src/repository/backup-journal.js';
import { backupJournalKey } from '../../src/repository/layout.js';
import { PosixStore } from '../../src/storage/posix-store.js';

const attempt: ResumeAttempt = {
  backupId: 'T1ABCD', instance: 'main', mode: 'DELTA', parentId: 'T0AAAA', startLsn: 0x1_2345_6789_abcdn, timeline: 3,
  systemIdentifier: '7301234567890123456', compressAlg: 'zstd', compressLevel: 3, blockSize: 8192, resumedFrom: null,
};

/** The entries of these tests name no stored file: nothing to make durable before a batch. */
const nothingToSync = () => Promise.resolve();

function entry(i: number): FileEntry {
  return {
    path: `base/5/${16384 + i}`, kind: 'data', mode: 0o600, mtimeMs: 1_700_000_000_000 + i, size: 8192 * (i + 1), storage: i % 2 ? 'delta' : 'full',
    storedSize: 100 + i, storedChecksum: '0123456789abcdef', checksum: 'fedcba9876543210', compressAlg: 'zstd', blocks: i + 1, uid: 26, gid: 26,
  };
}

describe('backup journal', () => {
  let dir: string;
  let store: PosixStore;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-journal-'));
    store = new PosixStore(dir);
    path = join(dir, backupJournalKey('main', 'T1ABCD'));
    await mkdir(dirname(path), { recursive: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads back the header and every entry added, flushed by count and on close', async () => {
    const w = await BackupJournalWriter.create(dir, attempt, nothingToSync);
    const n = FLUSH_LINES + 5;
    for (let i = 0; i < n; i++) await w.add(entry(i));
    expect(w.entriesWritten).toBe(FLUSH_LINES);
    await w.close();
    expect(w.entriesWritten).toBe(n);
    const j = await readBackupJournal(store, 'main', 'T1ABCD');
    expect(j?.attempt).toEqual(attempt);
    expect(j?.torn).toBe(false);
    expect(j?.entries.size).toBe(n);
    expect(j?.entries.get('base/5/16390')).toEqual(entry(6));
  });

  it('runs beforeBatch with the entries of each batch before its lines reach the file', async () => {
    const seen: { paths: string[]; onDisk: number }[] = [];
    const w = await BackupJournalWriter.create(dir, attempt, async (entries) => {
      seen.push({ paths: entries.map((e) => e.path), onDisk: (await readBackupJournal(store, 'main', 'T1ABCD'))?.entries.size ?? -1 });
    });
    const n = FLUSH_LINES + 2;
    for (let i = 0; i < n; i++) await w.add(entry(i));
    await w.close();
    expect(seen.map((s) => s.paths.length)).toEqual([FLUSH_LINES, 2]);
    expect(seen[1]!.paths).toEqual([entry(FLUSH_LINES).path, entry(FLUSH_LINES + 1).path]);
    // Each batch's lines were not in the file yet when its files were made durable.
    expect(seen.map((s) => s.onDisk)).toEqual([0, FLUSH_LINES]);
    expect((await readBackupJournal(store, 'main', 'T1ABCD'))?.entries.size).toBe(n);
  });

  it('writes no line of a batch whose beforeBatch fails, and fails every later add', async () => {
    // As syncObjects fails: a PgkeepError, which reaches the caller as it is.
    const failure = new PgkeepError('DISK_FULL', 'no space left while trying to sync base/5/16385', 'free space');
    let calls = 0;
    const w = await BackupJournalWriter.create(dir, attempt, async () => {
      if (++calls === 2) throw failure;
    });
    await w.add(entry(0));
    await w.flush();
    await w.add(entry(1));
    await expect(w.flush()).rejects.toBe(failure);
    await expect(w.add(entry(2))).rejects.toBe(failure);
    await w.close().catch(() => undefined);
    expect([...(await readBackupJournal(store, 'main', 'T1ABCD'))!.entries.keys()]).toEqual([entry(0).path]);
  });

  it('flushes a batch within a second without more adds', async () => {
    const w = await BackupJournalWriter.create(dir, attempt, nothingToSync);
    await w.add(entry(0));
    expect((await readBackupJournal(store, 'main', 'T1ABCD'))?.entries.size).toBe(0);
    await new Promise((r) => setTimeout(r, 1300));
    expect((await readBackupJournal(store, 'main', 'T1ABCD'))?.entries.size).toBe(1);
    await w.close();
  });

  it('ignores a torn last line and stops at a damaged one', async () => {
    const w = await BackupJournalWriter.create(dir, attempt, nothingToSync);
    for (let i = 0; i < 3; i++) await w.add(entry(i));
    await w.close();
    const full = await readFile(path);
    await truncate(path, full.length - 10);
    let j = await readBackupJournal(store, 'main', 'T1ABCD');
    expect([...j!.entries.keys()]).toEqual(['base/5/16384', 'base/5/16385']);
    expect(j!.torn).toBe(true);

    // One byte changed in line 3 (entry 1): that line and all after it are left out.
    const lines = full.toString('utf8').split('\n');
    lines[2] = lines[2]!.replace('"size":16384', '"size":16385');
    await writeFile(path, lines.join('\n'));
    j = await readBackupJournal(store, 'main', 'T1ABCD');
    expect([...j!.entries.keys()]).toEqual(['base/5/16384']);
    expect(j!.torn).toBe(true);
  });

  it('is undefined when missing; a damaged header or someone else\'s journal is refused', async () => {
    expect(await readBackupJournal(store, 'main', 'T1ABCD')).toBeUndefined();
    await writeFile(path, '0000000000000000 {"formatVersion":1}\n');
    await expect(readBackupJournal(store, 'main', 'T1ABCD')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('resume.jsonl') });
    await rm(path);
    const w = await BackupJournalWriter.create(dir, { ...attempt, backupId: 'T1ABCD' }, nothingToSync);
    await w.close();
    const otherPath = join(dir, backupJournalKey('main', 'T2XYZ'));
    await mkdir(dirname(otherPath), { recursive: true });
    await writeFile(otherPath, await readFile(path));
    await appendFile(otherPath, '');
    await expect(readBackupJournal(store, 'main', 'T2XYZ')).rejects.toMatchObject({ code: 'MANIFEST_CORRUPT', message: expect.stringContaining('describes backup T1ABCD') });
  });
});
