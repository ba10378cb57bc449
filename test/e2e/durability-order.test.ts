// The order of a backup's durability steps, watched with strace (a power loss cannot be staged in
// a test; the system calls that make one harmless can be watched). A backup's copy commits its
// stored files without waiting for the disk, and makes them durable many at a time
// (docs/repository-format.md, "Durability of a backup's stored files"). Checked on a FULL backup
// with files in parts (-j 2: the worker thread's files too) and a DELTA backup over it:
// - no stored file of the backup is fsynced under its temporary name (the copy does not wait);
// - before manifest.jsonl is renamed into place, every stored file it names has been fsynced,
//   and the directory holding it fsynced after the file got its name (rename or link), and the
//   parent of every directory made under the backup fsynced after it was made;
// - files are fsynced ahead, as they are committed: a part while later parts are still written.
// A restore of the DELTA: each of its files is fsynced after its last write (in the background,
// as files are finished, while later ones are still written), the recovery settings after they
// are written, all before pg_control is created; then pg_control, then every directory. A merge of the DELTA: its linked and rebuilt files and their
// directories, before the new generation's manifest.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGKEEP_BIN } from '../helpers/cli.js';
import { TestCluster } from '../helpers/cluster.js';
import { traceCalls, type TracedCall } from '../helpers/syscall-trace.js';
import { makeTempDir } from '../helpers/tmp.js';
import { newRepo, readManifestFile, type ManifestLine, type RepoFixture } from './pgkeep-fixture.js';

/**
 * The restore runs with every fsync 2 ms late, so that its syncs, started as files are finished,
 * are still running when the last file is written: a restore that did not wait for them before
 * pg_control would show here.
 */
const SLOW_FSYNC_US = 10000;

/** Parts of 4 MiB cut pgbench_accounts of scale 2 (26 MB) into 7 stored files. */
const PART = 4 * 1024 * 1024;

describe('durability order of a backup (strace), PostgreSQL 15', () => {
  let source: TestCluster;
  let fx: RepoFixture;

  beforeAll(async () => {
    source = await TestCluster.create({ major: 15, name: 'durability', settings: { autovacuum: 'off' } });
    await source.pgbenchInit(2);
    fx = await newRepo(source);
  });

  afterAll(async () => {
    await source?.destroy();
  });

  /** Takes a backup under strace; returns its id and the traced calls. */
  async function tracedBackup(mode: string): Promise<{ id: string; calls: TracedCall[] }> {
    const before = new Set((await fx.showJson())[0]?.backups.map((b) => b.id) ?? []);
    const env = { ...process.env, NO_COLOR: '1', PGKEEP_REPO: fx.repo, PGKEEP_PART_BYTES: String(PART) };
    const calls = await traceCalls([process.execPath, PGKEEP_BIN, 'backup', '--instance', 'main', '-b', mode, '--stream', '-j', '2', '--no-validate'], env);
    const added = (await fx.showJson())[0]!.backups.filter((b) => !before.has(b.id));
    expect(added.map((b) => b.status)).toEqual(['DONE']);
    return { id: added[0]!.id, calls };
  }

  /** Where generation `g` of a backup keeps its manifest and data (docs/repository-format.md). */
  const generationDir = (id: string, g: number) => join(fx.repo, 'instances', 'main', 'backups', id, ...(g === 0 ? [] : [`g${g}`]));

  /** The absolute paths of the stored files the manifest of generation `g` names (parts one by one). */
  async function storedPaths(id: string, g = 0): Promise<string[]> {
    const dir = generationDir(id, g);
    const lines = (await readFile(join(dir, 'manifest.jsonl'), 'utf8')).split('\n').filter((l) => l.startsWith('{"path"'));
    const out: string[] = [];
    for (const e of lines.map((l) => JSON.parse(l) as ManifestLine)) {
      if (e.parts) out.push(...e.parts.map((_p, i) => `${join(dir, 'data', e.path)}.part${i}`));
      else if (e.storedChecksum !== null) out.push(join(dir, 'data', e.path));
    }
    return out;
  }

  function checkOrder(id: string, calls: TracedCall[], stored: string[], g = 0): void {
    const backupDir = generationDir(id, g);
    const manifestRename = calls.find((c) => c.call === 'rename' && c.paths[1] === join(backupDir, 'manifest.jsonl'));
    expect(manifestRename, 'manifest.jsonl renamed into place').toBeDefined();
    const manifestAt = manifestRename!.start;

    const tempSyncs = calls.filter((c) => c.call === 'fsync' && c.paths[0]!.startsWith(join(backupDir, 'data') + '/') && c.paths[0]!.includes('.tmp.'));
    expect(tempSyncs.map((c) => c.paths[0]), 'stored files fsynced before their rename').toEqual([]);

    const named = new Map<string, TracedCall>();
    for (const c of calls) if ((c.call === 'rename' || c.call === 'link') && c.paths[1]) named.set(c.paths[1], c);
    const late: string[] = [];
    for (const path of stored) {
      const gotName = named.get(path);
      if (!gotName) {
        late.push(`${path}: never renamed or linked into place`);
        continue;
      }
      const fileSynced = calls.some((c) => c.call === 'fsync' && c.paths[0] === path && c.start > gotName.end && c.end < manifestAt);
      const dirSynced = calls.some((c) => c.call === 'fsync' && c.paths[0] === dirname(path) && c.start > gotName.end && c.end < manifestAt);
      if (!fileSynced) late.push(`${path}: not fsynced before the manifest`);
      if (!dirSynced) late.push(`${dirname(path)}: not fsynced after ${path} got its name and before the manifest`);
    }
    // Each directory's entry is in its parent: the copy makes directories without waiting for
    // the disk, and their parents are synced with the files.
    const made = calls.filter((c) => c.call === 'mkdir' && c.paths[0]!.startsWith(join(backupDir, 'data') + '/'));
    expect(made.length, 'directories made under the backup').toBeGreaterThan(3);
    for (const m of made) {
      const parent = dirname(m.paths[0]!);
      if (!calls.some((c) => c.call === 'fsync' && c.paths[0] === parent && c.start > m.end && c.end < manifestAt)) late.push(`${parent}: not fsynced after ${m.paths[0]} was made and before the manifest`);
    }
    expect(late).toEqual([]);
  }

  it('FULL with parts: every stored file and its directory are fsynced before the manifest, none under its temporary name', async () => {
    const { id, calls } = await tracedBackup('FULL');
    const stored = await storedPaths(id);
    expect(stored.filter((p) => /\.part\d+$/.test(p)).length).toBeGreaterThanOrEqual(7);
    expect(stored.some((p) => p.includes('/pg_wal/'))).toBe(true);
    checkOrder(id, calls, stored);
    // Synced ahead, as each is committed: a part fsynced while later parts are still written.
    // (Otherwise the first fsyncs come with the journal's first batch, after the file's last part.)
    const renamedAt = (path: string) => calls.find((c) => c.call === 'rename' && c.paths[1] === path)?.end ?? Infinity;
    const parts = stored.filter((p) => /\.part\d+$/.test(p));
    const lastPartNamed = Math.max(...parts.map(renamedAt));
    const ahead = parts.filter((p) => calls.some((c) => c.call === 'fsync' && c.paths[0] === p && c.start < lastPartNamed));
    expect(ahead.length, 'parts fsynced before the last part got its name').toBeGreaterThan(0);
  });

  let delta = '';

  it('DELTA after a change: the page deltas too', async () => {
    await source.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 50 = 0');
    await source.query('CHECKPOINT');
    const { id, calls } = await tracedBackup('DELTA');
    delta = id;
    const stored = await storedPaths(id);
    const deltas = [...(await readManifestFile(fx.repo, id)).files.values()].filter((e) => e.storage === 'delta');
    expect(deltas.length).toBeGreaterThan(0);
    checkOrder(id, calls, stored);
  });

  it('restore: each file is fsynced after its last write, while later files are still written, and before pg_control is created; pg_control, the recovery settings and the directories too', async () => {
    expect(delta).not.toBe('');
    const dest = join(await makeTempDir('restore'), 'data');
    const env = { ...process.env, NO_COLOR: '1', PGKEEP_REPO: fx.repo };
    const calls = await traceCalls([process.execPath, PGKEEP_BIN, 'restore', '--instance', 'main', '-i', delta, '-D', dest, '-j', '2', '--as-standby', '--archive-mode', 'off'], env, { writes: true, slowFsyncUs: SLOW_FSYNC_US });
    const manifestText = await readFile(join(fx.repo, 'instances', 'main', 'backups', delta, 'manifest.jsonl'), 'utf8');
    const entries = manifestText.split('\n').filter((l) => l.startsWith('{"path"')).map((l) => JSON.parse(l) as { path: string; kind: string });
    const control = join(dest, 'global', 'pg_control');
    const files = entries.filter((e) => ['data', 'file', 'wal'].includes(e.kind)).map((e) => join(dest, e.path)).filter((p) => p !== control);
    const recoveryFiles = [join(dest, 'postgresql.auto.conf'), join(dest, 'standby.signal')];
    const dirs = [dest, ...entries.filter((e) => e.kind === 'dir').map((e) => join(dest, e.path))];
    const created = (path: string) => calls.find((c) => c.call === 'create' && c.paths[0] === path);
    const syncs = (path: string) => calls.filter((c) => c.call === 'fsync' && c.paths[0] === path);

    const controlCreated = created(control);
    expect(controlCreated, 'pg_control created').toBeDefined();
    const controlSynced = syncs(control).find((c) => c.start > controlCreated!.end);
    expect(controlSynced, 'pg_control fsynced').toBeDefined();
    const lastWrite = (path: string) => Math.max(created(path)?.end ?? -1, ...calls.filter((c) => c.call === 'write' && c.paths[0] === path).map((c) => c.end));
    const late: string[] = [];
    for (const path of files) if (!syncs(path).some((c) => c.start > lastWrite(path) && c.end < controlCreated!.start)) late.push(`${path}: not fsynced after its last write and before pg_control was created`);
    // The settings are appended to postgresql.auto.conf (a file of the backup) just before the
    // signal file is created: both fsynced after that, before pg_control.
    const signalCreated = created(recoveryFiles[1]!);
    expect(signalCreated, 'standby.signal created').toBeDefined();
    for (const path of recoveryFiles) if (!syncs(path).some((c) => c.start > Math.max(signalCreated!.end, lastWrite(path)) && c.end < controlCreated!.start)) late.push(`${path}: not fsynced after the recovery settings were written and before pg_control was created`);
    for (const dir of dirs) if (!syncs(dir).some((c) => c.start > controlSynced!.end)) late.push(`${dir}: not fsynced after pg_control`);
    expect(late).toEqual([]);
    // Synced as they are finished: the disk writes back the first files while later ones are
    // still being created, instead of all of them after the last.
    expect(files.every((p) => created(p) !== undefined), 'every file created').toBe(true);
    const lastCreate = Math.max(...files.map((p) => created(p)!.start));
    const ahead = files.filter((p) => syncs(p).some((c) => c.start < lastCreate));
    expect(ahead.length, 'files fsynced before the last file was created').toBeGreaterThan(0);
    expect(calls.filter((c) => c.call === 'write').length, 'writes traced').toBeGreaterThan(files.length / 2);
  });

  it('merge of the DELTA: every linked and rebuilt file and its directory fsynced before the new generation\'s manifest, none under its temporary name', async () => {
    expect(delta).not.toBe('');
    const env = { ...process.env, NO_COLOR: '1', PGKEEP_REPO: fx.repo };
    const calls = await traceCalls([process.execPath, PGKEEP_BIN, 'merge', '--instance', 'main', '-i', delta, '-j', '2'], env);
    const stored = await storedPaths(delta, 1);
    const linked = calls.filter((c) => c.call === 'link' && stored.includes(c.paths[1]!));
    const renamed = calls.filter((c) => c.call === 'rename' && stored.includes(c.paths[1]!));
    expect(linked.length, 'files linked from the chain').toBeGreaterThan(0);
    expect(renamed.length, 'files rebuilt').toBeGreaterThan(0);
    checkOrder(delta, calls, stored, 1);
  });
});
