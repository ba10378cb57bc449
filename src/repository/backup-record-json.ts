/**
 * The JSON form of a BackupRecord, shared by backup.json and the manifest header: LSNs as
 * PostgreSQL's "X/Y" text (bigint does not survive JSON), dates as ISO strings, every field
 * present (null rather than missing) so that a reader can tell a damaged file from an old one.
 */
import { BACKUP_MODES, BACKUP_STATUSES, COMPRESS_ALGS, type BackupRecord } from '../core/backup-types.js';
import { formatLsn } from '../core/lsn.js';
import { corruptFile, JsonFields } from './json-fields.js';
import { isBackupId } from './layout.js';

export function backupRecordToJson(r: BackupRecord): Record<string, unknown> {
  return {
    id: r.id,
    instance: r.instance,
    mode: r.mode,
    status: r.status,
    parentId: r.parentId,
    timeline: r.timeline,
    startLsn: formatLsn(r.startLsn),
    stopLsn: r.stopLsn === null ? null : formatLsn(r.stopLsn),
    startTime: r.startTime.toISOString(),
    endTime: r.endTime?.toISOString() ?? null,
    recoveryTime: r.recoveryTime?.toISOString() ?? null,
    recoveryXid: r.recoveryXid,
    dataBytes: r.dataBytes,
    storedBytes: r.storedBytes,
    pgdataBytes: r.pgdataBytes,
    walBytes: r.walBytes,
    compressAlg: r.compressAlg,
    compressLevel: r.compressLevel,
    stream: r.stream,
    serverVersion: r.serverVersion,
    serverVersionNum: r.serverVersionNum,
    programVersion: r.programVersion,
    note: r.note,
    systemIdentifier: r.systemIdentifier,
    blockSize: r.blockSize,
    walSegSize: r.walSegSize,
    checksumsEnabled: r.checksumsEnabled,
    ownerPid: r.ownerPid,
    ownerHost: r.ownerHost,
    changeSource: r.changeSource,
    error: r.error,
    metrics: r.metrics,
    generation: r.generation,
    expireTime: r.expireTime?.toISOString() ?? null,
    blockValidationSkipped: r.blockValidationSkipped === true,
  };
}

/** Parse and check a BackupRecord; MANIFEST_CORRUPT naming `source` on any mismatch. */
export function backupRecordFromJson(obj: Record<string, unknown>, source: string): BackupRecord {
  const f = new JsonFields(obj, source);
  const record: BackupRecord = {
    id: f.string('id'),
    instance: f.string('instance'),
    mode: f.oneOf('mode', BACKUP_MODES),
    status: f.oneOf('status', BACKUP_STATUSES),
    parentId: f.nullableString('parentId'),
    timeline: f.count('timeline'),
    startLsn: f.lsn('startLsn'),
    stopLsn: f.nullableLsn('stopLsn'),
    startTime: f.date('startTime'),
    endTime: f.nullableDate('endTime'),
    recoveryTime: f.nullableDate('recoveryTime'),
    recoveryXid: f.nullableString('recoveryXid'),
    dataBytes: f.count('dataBytes'),
    storedBytes: f.count('storedBytes'),
    pgdataBytes: f.count('pgdataBytes'),
    walBytes: f.count('walBytes'),
    compressAlg: f.oneOf('compressAlg', COMPRESS_ALGS),
    compressLevel: f.integer('compressLevel'),
    stream: f.boolean('stream'),
    serverVersion: f.string('serverVersion'),
    serverVersionNum: f.count('serverVersionNum'),
    programVersion: f.string('programVersion'),
    note: f.nullableString('note'),
    systemIdentifier: f.string('systemIdentifier'),
    blockSize: f.count('blockSize'),
    walSegSize: f.count('walSegSize'),
    checksumsEnabled: f.boolean('checksumsEnabled'),
    ownerPid: f.nullableInteger('ownerPid'),
    ownerHost: f.nullableString('ownerHost'),
    changeSource: f.nullableString('changeSource'),
    error: f.nullableString('error'),
    metrics: f.nullableNumberRecord('metrics'),
    // Absent in files written before merges existed: generation 0.
    generation: obj.generation === undefined ? 0 : f.count('generation'),
  };
  // Absent in files written before pinning existed, and null: not pinned. Set only when pinned,
  // so that a record read back equals the unpinned one written.
  const expireTime = obj.expireTime === undefined ? null : f.nullableDate('expireTime');
  if (expireTime !== null) record.expireTime = expireTime;
  // Absent in files written before it was recorded (their pages were checked), and false: set
  // only when true, like expireTime.
  if (obj.blockValidationSkipped !== undefined && f.boolean('blockValidationSkipped')) record.blockValidationSkipped = true;
  if (!isBackupId(record.id)) throw corruptFile(source, `invalid backup id "${record.id}"`);
  if (record.parentId !== null && !isBackupId(record.parentId)) throw corruptFile(source, `invalid parent id "${record.parentId}"`);
  return record;
}
