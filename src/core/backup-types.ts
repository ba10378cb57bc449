/**
 * The vocabulary shared by every layer: backup records (catalog rows and the repository's
 * backup.json), manifest file entries, modes and statuses. Pure types and constants, no I/O.
 */
import type { Lsn } from './lsn.js';

export const BACKUP_MODES = ['FULL', 'DELTA', 'PTRACK', 'PAGE'] as const;
export type BackupMode = (typeof BACKUP_MODES)[number];

/**
 * RUNNING: being written (owner pid/host recorded). DONE: every byte durable, not yet validated.
 * OK: validated. ERROR: failed or interrupted. CORRUPT: validation failed. ORPHAN: an ancestor is
 * not usable. MERGING / DELETING: a merge or delete is under way (and resumable).
 */
export const BACKUP_STATUSES = ['RUNNING', 'DONE', 'OK', 'ERROR', 'CORRUPT', 'ORPHAN', 'MERGING', 'DELETING'] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

export const COMPRESS_ALGS = ['none', 'gzip', 'lz4', 'zstd'] as const;
export type CompressAlg = (typeof COMPRESS_ALGS)[number];

/** Everything known about one backup. Mirrors backup.json in the repository and the catalog row. */
export interface BackupRecord {
  id: string;
  instance: string;
  mode: BackupMode;
  status: BackupStatus;
  parentId: string | null;
  timeline: number;
  startLsn: Lsn;
  stopLsn: Lsn | null;
  startTime: Date;
  endTime: Date | null;
  recoveryTime: Date | null;
  recoveryXid: string | null;
  /** Bytes of PGDATA content this backup covers (what a restore writes, WAL aside). */
  dataBytes: number;
  /** Bytes this backup stores in the repository (compressed; pages only for increments). */
  storedBytes: number;
  /** Size of the data directory read at backup time. */
  pgdataBytes: number;
  /** Bytes of WAL carried in the backup (stream mode). */
  walBytes: number;
  compressAlg: CompressAlg;
  compressLevel: number;
  stream: boolean;
  serverVersion: string;
  serverVersionNum: number;
  programVersion: string;
  note: string | null;
  systemIdentifier: string;
  blockSize: number;
  walSegSize: number;
  checksumsEnabled: boolean;
  /** Process that writes the backup while RUNNING, so that a later command can tell it died. */
  ownerPid: number | null;
  ownerHost: string | null;
  /** Where an incremental backup learned which pages changed (ptrack, wal-summary, lsn-scan, wal). */
  changeSource: string | null;
  /** Why the backup is ERROR or CORRUPT, for `show -i`. */
  error: string | null;
  /** Figures of the run (bytes read, written, throughput, peak RSS...), free-form. */
  metrics: Record<string, number> | null;
  /**
   * Which copy of the backup's files is current: 0 is `data/` + `manifest.jsonl`; a merge writes
   * generation N+1 beside it (`g<N+1>/`) and switches by rewriting backup.json, one atomic step.
   */
  generation: number;
  /**
   * Pinned until this time (`set-backup --ttl/--expire-time`): retention keeps the backup and its
   * ancestors while it lies in the future. Absent or null: not pinned.
   */
  expireTime?: Date | null;
  /**
   * Taken with --skip-block-validation: its pages were stored as read, unjudged, so validation
   * judges none of them either. Absent: they were checked. A merge carries it over from any
   * backup of the chain it folds.
   */
  blockValidationSkipped?: true;
}

/**
 * Kinds of manifest entries.
 * data: a relation file (pages; block-level incremental applies). file: any other regular file.
 * dir: a directory to recreate (also excluded directories, empty). symlink: a tablespace link.
 * wal: a WAL segment carried by a stream backup, restored into pg_wal/.
 */
export type FileKind = 'data' | 'file' | 'dir' | 'symlink' | 'wal';

/**
 * How an entry's bytes are held. full: the whole file is stored in this backup.
 * delta: only changed pages are stored in this backup (page-delta format, issue 3).
 * parent: unchanged since the parent; the bytes come from an ancestor. none: dirs and links.
 */
export type FileStorage = 'full' | 'delta' | 'parent' | 'none';

export interface FileEntry {
  /** Path relative to the data directory, '/'-separated ('base/5/1259', 'pg_wal/0000...'). */
  path: string;
  kind: FileKind;
  /** Permission bits (e.g. 0o600). */
  mode: number;
  /** Modification time in milliseconds since the epoch, at backup time. */
  mtimeMs: number;
  /** Size of the file content in bytes at backup time. */
  size: number;
  storage: FileStorage;
  /** Bytes stored in the repository for this entry in this backup (0 for parent/none). */
  storedSize: number;
  /** xxh64 (hex) of the stored bytes, for validate; null when nothing is stored. */
  storedChecksum: string | null;
  /** xxh64 (hex) of the file content as restored; null for dirs and links. */
  checksum: string | null;
  compressAlg: CompressAlg;
  /** Data files: number of blocks at backup time (size / block size). */
  blocks?: number;
  /** Delta entries: number of pages stored. */
  deltaBlocks?: number;
  /** Symlinks: the link target (tablespace location). */
  linkTarget?: string;
  /** Owner in the source data directory, so that a restore run as root leaves it as it was. */
  uid?: number;
  gid?: number;
  /**
   * Set when `checksum` is the part-tree form (docs/repository-format.md, "Parts"): the content
   * cut into parts of this many bytes (the last shorter), `checksum` the xxh64 of their xxh64s.
   * Kept wherever the checksum is carried (an unchanged file of a child backup), so that any
   * reader knows how to check it.
   */
  partSize?: number;
  /** storage 'full' with partSize: the parts stored in this backup, in order (at least two). */
  parts?: StoredPart[];
}

/** One part of a file stored in parts: copied, stored and checked on its own. */
export interface StoredPart {
  /** xxh64 of this part's content. */
  checksum: string;
  /** Bytes stored for this part. */
  storedSize: number;
  /** xxh64 of this part's stored bytes. */
  storedChecksum: string;
}

/** Keys in `show --format json` use these names; the catalog and repository use camelCase. */
export const PROGRAM_NAME = 'pgkeep';
