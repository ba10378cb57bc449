/**
 * Mapping between BackupRecord and a row of the `backups` table. The mapping is exact: bigint LSNs
 * as PostgreSQL "X/Y" text, dates as ISO-8601 UTC text, booleans as 0/1, metrics as JSON. Null
 * stays null.
 * The generated start_lsn_hex / stop_lsn_hex columns are derived by SQLite and never written.
 */
import type { BackupMode, BackupRecord, BackupStatus, CompressAlg } from '../core/backup-types.js';
import { formatLsn, parseLsn } from '../core/lsn.js';

/** Writable columns of `backups`, as better-sqlite3 binds and returns them. */
export interface BackupColumns {
  id: string;
  instance: string;
  mode: string;
  status: string;
  parent_id: string | null;
  timeline: number;
  start_lsn: string;
  stop_lsn: string | null;
  start_time: string;
  end_time: string | null;
  recovery_time: string | null;
  recovery_xid: string | null;
  data_bytes: number;
  stored_bytes: number;
  pgdata_bytes: number;
  wal_bytes: number;
  compress_alg: string;
  compress_level: number;
  stream: number;
  server_version: string;
  server_version_num: number;
  program_version: string;
  note: string | null;
  system_identifier: string;
  block_size: number;
  wal_seg_size: number;
  checksums_enabled: number;
  owner_pid: number | null;
  owner_host: string | null;
  change_source: string | null;
  error: string | null;
  metrics_json: string | null;
  generation: number;
  expire_time: string | null;
  block_validation_skipped: number;
}

/** Column names in a fixed order, for INSERT statements built once. */
export const BACKUP_COLUMNS: readonly (keyof BackupColumns)[] = [
  'id', 'instance', 'mode', 'status', 'parent_id', 'timeline', 'start_lsn', 'stop_lsn',
  'start_time', 'end_time', 'recovery_time', 'recovery_xid', 'data_bytes', 'stored_bytes',
  'pgdata_bytes', 'wal_bytes', 'compress_alg', 'compress_level', 'stream', 'server_version',
  'server_version_num', 'program_version', 'note', 'system_identifier', 'block_size',
  'wal_seg_size', 'checksums_enabled', 'owner_pid', 'owner_host', 'change_source', 'error',
  'metrics_json',
  'generation',
  'expire_time',
  'block_validation_skipped',
];

export function backupToColumns(r: BackupRecord): BackupColumns {
  return {
    id: r.id,
    instance: r.instance,
    mode: r.mode,
    status: r.status,
    parent_id: r.parentId,
    timeline: r.timeline,
    start_lsn: formatLsn(r.startLsn),
    stop_lsn: r.stopLsn === null ? null : formatLsn(r.stopLsn),
    start_time: r.startTime.toISOString(),
    end_time: isoOrNull(r.endTime),
    recovery_time: isoOrNull(r.recoveryTime),
    recovery_xid: r.recoveryXid,
    data_bytes: r.dataBytes,
    stored_bytes: r.storedBytes,
    pgdata_bytes: r.pgdataBytes,
    wal_bytes: r.walBytes,
    compress_alg: r.compressAlg,
    compress_level: r.compressLevel,
    stream: r.stream ? 1 : 0,
    server_version: r.serverVersion,
    server_version_num: r.serverVersionNum,
    program_version: r.programVersion,
    note: r.note,
    system_identifier: r.systemIdentifier,
    block_size: r.blockSize,
    wal_seg_size: r.walSegSize,
    checksums_enabled: r.checksumsEnabled ? 1 : 0,
    owner_pid: r.ownerPid,
    owner_host: r.ownerHost,
    change_source: r.changeSource,
    error: r.error,
    metrics_json: r.metrics === null ? null : JSON.stringify(r.metrics),
    generation: r.generation,
    expire_time: isoOrNull(r.expireTime ?? null),
    block_validation_skipped: r.blockValidationSkipped === true ? 1 : 0,
  };
}

/** The CHECK constraints on mode, status and compress_alg make these casts safe. */
export function backupFromColumns(c: BackupColumns): BackupRecord {
  return {
    id: c.id,
    instance: c.instance,
    mode: c.mode as BackupMode,
    status: c.status as BackupStatus,
    parentId: c.parent_id,
    timeline: c.timeline,
    startLsn: parseLsn(c.start_lsn),
    stopLsn: c.stop_lsn === null ? null : parseLsn(c.stop_lsn),
    startTime: new Date(c.start_time),
    endTime: dateOrNull(c.end_time),
    recoveryTime: dateOrNull(c.recovery_time),
    recoveryXid: c.recovery_xid,
    dataBytes: c.data_bytes,
    storedBytes: c.stored_bytes,
    pgdataBytes: c.pgdata_bytes,
    walBytes: c.wal_bytes,
    compressAlg: c.compress_alg as CompressAlg,
    compressLevel: c.compress_level,
    stream: c.stream === 1,
    serverVersion: c.server_version,
    serverVersionNum: c.server_version_num,
    programVersion: c.program_version,
    note: c.note,
    systemIdentifier: c.system_identifier,
    blockSize: c.block_size,
    walSegSize: c.wal_seg_size,
    checksumsEnabled: c.checksums_enabled === 1,
    ownerPid: c.owner_pid,
    ownerHost: c.owner_host,
    changeSource: c.change_source,
    error: c.error,
    metrics: c.metrics_json === null ? null : (JSON.parse(c.metrics_json) as Record<string, number>),
    generation: c.generation,
    // Set only when pinned, so that a record read back equals the unpinned one written.
    ...(c.expire_time === null ? {} : { expireTime: new Date(c.expire_time) }),
    ...(c.block_validation_skipped === 1 ? { blockValidationSkipped: true as const } : {}),
  };
}

function isoOrNull(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

function dateOrNull(s: string | null): Date | null {
  return s === null ? null : new Date(s);
}

/** An LSN as the generated start_lsn_hex / stop_lsn_hex columns hold it: 16 upper-case hex digits, which sort as the LSNs do. */
export function sortableLsn(lsn: bigint): string {
  return lsn.toString(16).toUpperCase().padStart(16, '0');
}
