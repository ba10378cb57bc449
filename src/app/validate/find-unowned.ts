/**
 * Leftovers: files under the repository that no catalog row and no manifest owns. They take
 * space, and they are what a crash, a full disk or a hand-made copy leaves behind. Validate
 * reports them (it never removes anything: the user decides).
 *
 * Who owns what:
 *   pgkeep.repo, catalog.sqlite(-wal, -shm), locks/   the repository itself
 *   instances/<name>/                                 the instance's catalog row
 *   instances/<name>/instance.json, wal/<WAL name>    the instance
 *   instances/<name>/backups/<id>/                    the backup's catalog row; then
 *     backup.json, merge.json, resume.jsonl           always (journals of a merge or a resume)
 *     RUNNING, MERGING, DELETING, ERROR backups       everything else too (work under way, or
 *                                                     kept for a resume until `delete`)
 *     DONE, OK, CORRUPT, ORPHAN backups               the current generation's manifest.jsonl and
 *                                                     the data files it lists as stored; older
 *                                                     generations only while merge.json exists
 * A temporary (`<name>.tmp.<pid>.<hex>`) belongs to its writer while that process lives.
 *
 * The walk is over the local file system (temporaries are invisible to ByteStore.list).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupRecord } from '../../core/backup-types.js';
import { errnoCode, fromIoError } from '../../errors.js';
import { CATALOG_FILE, FORMAT_FILE, INSTANCES_KEY, isBackupId, locksKey } from '../../repository/layout.js';
import { readManifest } from '../../repository/manifest.js';
import { storedFileKeys } from '../../repository/stored-parts.js';
import { isWalFileName } from '../../repository/wal-archive.js';
import { processAlive, temporaryOwnerPid } from '../../storage/object-key.js';
import type { RepoContext } from '../repo-context.js';

export interface UnownedPath {
  /** Relative to the repository root. */
  path: string;
  reason: string;
}

const ROOT_FILES = new Set([FORMAT_FILE, CATALOG_FILE, `${CATALOG_FILE}-wal`, `${CATALOG_FILE}-shm`, `${CATALOG_FILE}-journal`, locksKey, INSTANCES_KEY]);
const JOURNALS = new Set(['backup.json', 'merge.json', 'resume.jsonl']);
const WORK_UNDER_WAY = new Set(['RUNNING', 'MERGING', 'DELETING', 'ERROR']);

/** Leftovers of the repository, or of one instance only; sorted by path. */
export async function findUnowned(ctx: RepoContext, instance?: string): Promise<UnownedPath[]> {
  const found: UnownedPath[] = [];
  const report = (path: string, reason: string) => found.push({ path, reason });
  const known = new Set(ctx.catalog.listInstances().map((i) => i.name));

  if (instance === undefined) {
    for (const e of await entries(ctx.root, '')) {
      if (isTemporary(e.name)) checkTemporary(e.name, e.name, report);
      else if (!ROOT_FILES.has(e.name)) report(e.name, 'not part of a pgkeep repository');
    }
  }
  for (const e of await entries(ctx.root, INSTANCES_KEY)) {
    const key = `${INSTANCES_KEY}/${e.name}`;
    if (instance !== undefined && e.name !== instance) continue;
    if (isTemporary(e.name)) checkTemporary(key, e.name, report);
    else if (!e.dir || !known.has(e.name)) report(key, 'no instance of the catalog has this name (`pgkeep catalog rebuild` indexes it again if its instance.json is sound)');
    else await checkInstance(ctx, e.name, report);
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function checkInstance(ctx: RepoContext, instance: string, report: Report): Promise<void> {
  const base = `${INSTANCES_KEY}/${instance}`;
  for (const e of await entries(ctx.root, base)) {
    if (isTemporary(e.name)) checkTemporary(`${base}/${e.name}`, e.name, report);
    else if (!['instance.json', 'wal', 'backups'].includes(e.name)) report(`${base}/${e.name}`, 'not part of an instance');
  }
  for (const e of await entries(ctx.root, `${base}/wal`)) {
    const key = `${base}/wal/${e.name}`;
    if (isTemporary(e.name)) checkTemporary(key, e.name, report);
    else if (e.dir || !isWalFileName(e.name)) report(key, 'not a WAL file name: archive-push never writes it');
  }
  const rows = new Map(ctx.catalog.listBackups(instance).map((b) => [b.id, b]));
  for (const e of await entries(ctx.root, `${base}/backups`)) {
    const key = `${base}/backups/${e.name}`;
    const row = rows.get(e.name);
    if (isTemporary(e.name)) checkTemporary(key, e.name, report);
    else if (!e.dir || !isBackupId(e.name)) report(key, 'not a backup directory');
    else if (!row) report(key, 'backup directory with no catalog row (`pgkeep catalog rebuild` indexes it again if its backup.json is sound; otherwise remove it)');
    else await checkBackup(ctx, row, key, report);
  }
}

async function checkBackup(ctx: RepoContext, b: BackupRecord, key: string, report: Report): Promise<void> {
  if (WORK_UNDER_WAY.has(b.status)) {
    await walkTemporaries(ctx.root, key, report);
    return;
  }
  const top = await entries(ctx.root, key);
  const merging = top.some((e) => e.name === 'merge.json');
  const current = b.generation === 0 ? '' : `g${b.generation}`;
  for (const e of top) {
    const path = `${key}/${e.name}`;
    const owned = JOURNALS.has(e.name) || e.name === current || (b.generation === 0 && (e.name === 'manifest.jsonl' || e.name === 'data')) || (merging && (/^g\d+$/.test(e.name) || e.name === 'manifest.jsonl' || e.name === 'data'));
    if (isTemporary(e.name)) checkTemporary(path, e.name, report);
    else if (!owned) report(path, `not part of backup ${b.id} (${b.status}, generation ${b.generation})`);
  }
  const genKey = current === '' ? key : `${key}/${current}`;
  if (current !== '') {
    for (const e of await entries(ctx.root, genKey)) {
      if (isTemporary(e.name)) checkTemporary(`${genKey}/${e.name}`, e.name, report);
      else if (e.name !== 'manifest.jsonl' && e.name !== 'data') report(`${genKey}/${e.name}`, `not part of backup ${b.id}`);
    }
  }
  let stored: Set<string>;
  try {
    const m = await readManifest(ctx.store, b.instance, b.id, b.generation);
    stored = new Set(m.files.filter((f) => f.storage === 'full' || f.storage === 'delta').flatMap((f) => storedFileKeys(f.path, f)));
  } catch {
    // A damaged manifest is a validation problem of the backup itself, reported there.
    await walkTemporaries(ctx.root, `${genKey}/data`, report);
    return;
  }
  await walkFiles(ctx.root, `${genKey}/data`, '', async (rel, name) => {
    const path = `${genKey}/data/${rel}`;
    if (isTemporary(name)) checkTemporary(path, name, report);
    else if (!stored.has(rel)) report(path, `data file that the manifest of backup ${b.id} does not list`);
  });
}

type Report = (path: string, reason: string) => void;

interface Entry {
  name: string;
  dir: boolean;
}

async function entries(root: string, key: string): Promise<Entry[]> {
  const path = key === '' ? root : join(root, ...key.split('/'));
  try {
    const list = await readdir(path, { withFileTypes: true });
    return list.map((d) => ({ name: d.name, dir: d.isDirectory() })).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return [];
    throw fromIoError(e, 'list', path);
  }
}

/** Calls `visit` for every non-directory under `key`, with its path relative to `key`. */
async function walkFiles(root: string, key: string, rel: string, visit: (rel: string, name: string) => Promise<void>): Promise<void> {
  for (const e of await entries(root, rel === '' ? key : `${key}/${rel}`)) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.dir) await walkFiles(root, key, r, visit);
    else await visit(r, e.name);
  }
}

async function walkTemporaries(root: string, key: string, report: Report): Promise<void> {
  await walkFiles(root, key, '', async (rel, name) => {
    if (isTemporary(name)) checkTemporary(`${key}/${rel}`, name, report);
  });
}

function isTemporary(name: string): boolean {
  return temporaryOwnerPid(name) !== undefined;
}

function checkTemporary(path: string, name: string, report: Report): void {
  const pid = temporaryOwnerPid(name)!;
  if (pid === process.pid || processAlive(pid)) return;
  report(path, `temporary file of process ${pid}, which is gone (a write it never finished): remove it`);
}
