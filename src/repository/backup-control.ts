/**
 * backup.json: the mutable record of one backup (status, owner, sizes...). It is rewritten
 * atomically at every status change, so it is always either the old or the new record. The
 * manifest is written once; this file is what says whether the backup may be used.
 */
import type { BackupRecord } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import { isMissingObjectError, type ByteStore } from '../storage/byte-store.js';
import { backupRecordFromJson, backupRecordToJson } from './backup-record-json.js';
import { checkFormatVersion, FILE_FORMAT_VERSION } from './format-version.js';
import { corruptFile, parseJsonObject } from './json-fields.js';
import { backupControlKey, backupsKey, isBackupId } from './layout.js';

export async function writeBackupControl(store: ByteStore, record: BackupRecord): Promise<void> {
  const body = { formatVersion: FILE_FORMAT_VERSION, ...backupRecordToJson(record) };
  await store.writeAtomic(backupControlKey(record.instance, record.id), `${JSON.stringify(body, null, 2)}\n`);
}

/** BACKUP_NOT_FOUND when missing, MANIFEST_CORRUPT (naming the file) when unreadable. */
export async function readBackupControl(store: ByteStore, instance: string, id: string): Promise<BackupRecord> {
  const key = backupControlKey(instance, id);
  let bytes: Buffer;
  try {
    bytes = await store.read(key);
  } catch (e) {
    if (isMissingObjectError(e)) {
      throw new PgkeepError('BACKUP_NOT_FOUND', `backup ${id} of instance ${instance} not found (no ${key})`, 'list backups with `pgkeep show`');
    }
    throw e;
  }
  const obj = parseJsonObject(bytes.toString('utf8'), key);
  checkFormatVersion(obj, key);
  const record = backupRecordFromJson(obj, key);
  if (record.id !== id || record.instance !== instance) {
    throw corruptFile(key, `it describes backup ${record.id} of instance ${record.instance}`);
  }
  return record;
}

/** Ids of the backup directories of an instance, sorted; stray names are skipped. */
export async function listBackupIds(store: ByteStore, instance: string): Promise<string[]> {
  return (await store.list(backupsKey(instance))).filter(isBackupId);
}
