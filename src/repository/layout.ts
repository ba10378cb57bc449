/**
 * Where everything lives in a repository (docs/repository-format.md, "Layout"). Pure key
 * builders and the guards that keep names from a command line or a manifest inside the tree.
 *
 *   pgkeep.repo                                   format file (version, id)
 *   catalog.sqlite                                the index, rebuildable from what follows
 *   locks/                                        lock files
 *   instances/<instance>/instance.json            instance settings
 *   instances/<instance>/wal/                     WAL archive
 *   instances/<instance>/backups/<id>/backup.json mutable status record
 *   instances/<instance>/backups/<id>/manifest.jsonl
 *   instances/<instance>/backups/<id>/resume.jsonl   progress journal while RUNNING (docs/resume.md)
 *   instances/<instance>/backups/<id>/data/<path> stored files
 */
import { PgkeepError } from '../errors.js';

export const FORMAT_FILE = 'pgkeep.repo';
export const CATALOG_FILE = 'catalog.sqlite';
export const INSTANCES_KEY = 'instances';
export const locksKey = 'locks';

const INSTANCE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
const BACKUP_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;

/** Throw INVALID_ARGUMENT unless `name` is 1-64 letters, digits, '_', '-', '.', not starting with '.'. */
export function validateInstanceName(name: string): void {
  if (!INSTANCE_NAME.test(name)) {
    throw new PgkeepError(
      'INVALID_ARGUMENT',
      `invalid instance name "${name}"`,
      "use 1 to 64 letters, digits, '_', '-' or '.', not starting with '.'",
    );
  }
}

/** Same shape as instance names: a backup id becomes a directory name. */
export function validateBackupId(id: string): void {
  if (!BACKUP_ID.test(id)) {
    throw new PgkeepError('INVALID_ARGUMENT', `invalid backup id "${id}"`, 'backup ids are letters, digits, and _ - . as shown by `pgkeep show`');
  }
}

/** True when `id` has the shape of a backup id (used to skip stray entries when listing). */
export function isBackupId(id: string): boolean {
  return BACKUP_ID.test(id);
}

/**
 * Throw INVALID_ARGUMENT unless `relPath` is a plain relative path: no '..' or '.', not absolute,
 * no NUL, no empty segments. Paths read from manifests go through here before any file is
 * written, so that a damaged or forged manifest can never write outside the restore target.
 */
export function assertSafeRelativePath(relPath: string): void {
  const bad =
    relPath === '' ||
    relPath.includes('\0') ||
    relPath.startsWith('/') ||
    relPath.split('/').some((s) => s === '' || s === '.' || s === '..');
  if (bad) {
    throw new PgkeepError('INVALID_ARGUMENT', `unsafe relative path "${relPath.replace(/\0/g, '\\0')}"`, 'paths must stay inside the data directory');
  }
}

export function instancesKey(): string {
  return INSTANCES_KEY;
}

export function instanceKey(instance: string): string {
  validateInstanceName(instance);
  return `${INSTANCES_KEY}/${instance}`;
}

export function instanceConfigKey(instance: string): string {
  return `${instanceKey(instance)}/instance.json`;
}

export function backupsKey(instance: string): string {
  return `${instanceKey(instance)}/backups`;
}

export function backupKey(instance: string, id: string): string {
  validateBackupId(id);
  return `${backupsKey(instance)}/${id}`;
}

export function backupControlKey(instance: string, id: string): string {
  return `${backupKey(instance, id)}/backup.json`;
}

/** The progress journal of a backup being written: which stored files are complete (docs/resume.md). */
export function backupJournalKey(instance: string, id: string): string {
  return `${backupKey(instance, id)}/resume.jsonl`;
}

/**
 * Where generation `generation` of a backup keeps its manifest and data: the backup directory
 * itself for 0, `g<N>/` inside it for a generation written by a merge.
 */
export function generationKey(instance: string, id: string, generation = 0): string {
  if (!Number.isInteger(generation) || generation < 0) throw new PgkeepError('INTERNAL', `invalid generation ${generation}`);
  return generation === 0 ? backupKey(instance, id) : `${backupKey(instance, id)}/g${generation}`;
}

export function manifestKey(instance: string, id: string, generation = 0): string {
  return `${generationKey(instance, id, generation)}/manifest.jsonl`;
}

export function backupDataPrefix(instance: string, id: string, generation = 0): string {
  return `${generationKey(instance, id, generation)}/data`;
}

export function backupDataKey(instance: string, id: string, relPath: string, generation = 0): string {
  assertSafeRelativePath(relPath);
  return `${backupDataPrefix(instance, id, generation)}/${relPath}`;
}

export function walArchiveKey(instance: string): string {
  return `${instanceKey(instance)}/wal`;
}
