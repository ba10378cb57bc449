/**
 * The public, documented shape of a backup in `show --format json` (snake_case, LSNs as "X/Y",
 * times as ISO 8601 UTC). Scripts depend on it: add keys, never rename or remove them.
 */
import type { BackupRecord } from '../../core/backup-types.js';
import { formatLsn } from '../../core/lsn.js';

export interface BackupJson {
  id: string;
  backup_mode: string;
  status: string;
  parent_backup_id: string | null;
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
  stream: boolean;
  server_version: string;
  program_version: string;
  note: string | null;
  system_identifier: string;
  block_size: number;
  wal_segment_size: number;
  checksums: boolean;
  change_source: string | null;
  error: string | null;
  metrics: Record<string, number> | null;
  /** Pinned until then (retention keeps it); null: not pinned. */
  expire_time: string | null;
  /** Taken with --skip-block-validation (or merged from such a backup): no page of it is judged. */
  block_validation_skipped: boolean;
}

export interface InstanceBackupsJson {
  instance: string;
  backups: BackupJson[];
}

export function backupToJson(b: BackupRecord): BackupJson {
  return {
    id: b.id,
    backup_mode: b.mode,
    status: b.status,
    parent_backup_id: b.parentId,
    timeline: b.timeline,
    start_lsn: formatLsn(b.startLsn),
    stop_lsn: b.stopLsn === null ? null : formatLsn(b.stopLsn),
    start_time: b.startTime.toISOString(),
    end_time: b.endTime?.toISOString() ?? null,
    recovery_time: b.recoveryTime?.toISOString() ?? null,
    recovery_xid: b.recoveryXid,
    data_bytes: b.dataBytes,
    stored_bytes: b.storedBytes,
    pgdata_bytes: b.pgdataBytes,
    wal_bytes: b.walBytes,
    compress_alg: b.compressAlg,
    compress_level: b.compressLevel,
    stream: b.stream,
    server_version: b.serverVersion,
    program_version: b.programVersion,
    note: b.note,
    system_identifier: b.systemIdentifier,
    block_size: b.blockSize,
    wal_segment_size: b.walSegSize,
    checksums: b.checksumsEnabled,
    change_source: b.changeSource,
    error: b.error,
    metrics: b.metrics,
    expire_time: b.expireTime?.toISOString() ?? null,
    block_validation_skipped: b.blockValidationSkipped === true,
  };
}

/** Backups grouped per instance (instances by name), newest backup first. */
export function showBackups(all: readonly BackupRecord[], instances: readonly string[]): InstanceBackupsJson[] {
  return [...instances].sort().map((name) => ({
    instance: name,
    backups: all
      .filter((b) => b.instance === name)
      .sort((a, b) => b.startTime.getTime() - a.startTime.getTime() || (a.id < b.id ? 1 : -1))
      .map(backupToJson),
  }));
}
