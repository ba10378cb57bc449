/**
 * Every difference between PostgreSQL majors that pgkeep depends on, in one table.
 * Add a major here and nowhere else.
 */
import { PgkeepError } from '../errors.js';

export const SUPPORTED_MAJORS = [13, 14, 15, 16, 17, 18] as const;
export type SupportedMajor = (typeof SUPPORTED_MAJORS)[number];

export interface MajorTraits {
  major: SupportedMajor;
  /** SQL that starts a non-exclusive backup; $1 label, $2 fast checkpoint. Returns the start LSN as `lsn`. */
  backupStartSql: string;
  /** SQL that stops it (same session); returns lsn, labelfile, spcmapfile. Never waits for the archive here. */
  backupStopSql: string;
  /** XLOG_PAGE_MAGIC of this major's WAL pages. */
  walPageMagic: number;
  /** Core WAL summaries (summarize_wal) exist from 17 on. */
  hasWalSummaries: boolean;
  /**
   * bimg_info bits of a full-page image (xlogrecord.h). 15 added LZ4/zstd and renumbered them:
   * before 15 HAS_HOLE 0x01, IS_COMPRESSED 0x02, APPLY 0x04; from 15 HAS_HOLE 0x01, APPLY 0x02,
   * COMPRESS_PGLZ 0x04 | LZ4 0x08 | ZSTD 0x10.
   */
  walImageApply: number;
  walImageCompressedMask: number;
  /**
   * RM_DBASE_ID record types (dbcommands_xlog.h). 15 split CREATE in two (the WAL_LOG strategy
   * logs the new database's blocks one by one), moving DROP from 0x10 to 0x20.
   */
  walDbaseCreateFileCopy: number;
  walDbaseCreateWalLog: number | undefined;
  walDbaseDrop: number;
  /** Custom resource managers (ids 128-255) exist from 15 on; built-in ids are 0-21 in 13-18. */
  walCustomRmgrs: boolean;
  /**
   * sizeof(xl_xact_stats_item), the dropped-stats entries of commit/abort records (15+):
   * { kind, dboid, objoid } 12 bytes in 15-17; 18 widened the object id to objid_lo + objid_hi, 16.
   */
  walXactStatsItemSize: number;
}

/** The WAL facts of a major, as the WAL reader needs them. */
export type WalTraits = Pick<
  MajorTraits,
  'major' | 'walPageMagic' | 'walImageApply' | 'walImageCompressedMask' | 'walDbaseCreateFileCopy' | 'walDbaseCreateWalLog' | 'walDbaseDrop' | 'walCustomRmgrs' | 'walXactStatsItemSize'
>;

const WAL_BEFORE_15 = { walImageApply: 0x04, walImageCompressedMask: 0x02, walDbaseCreateFileCopy: 0x00, walDbaseCreateWalLog: undefined, walDbaseDrop: 0x10, walCustomRmgrs: false, walXactStatsItemSize: 0 };
const WAL_FROM_15 = { walImageApply: 0x02, walImageCompressedMask: 0x04 | 0x08 | 0x10, walDbaseCreateFileCopy: 0x00, walDbaseCreateWalLog: 0x10, walDbaseDrop: 0x20, walCustomRmgrs: true };

const START_BEFORE_15 = 'SELECT pg_start_backup($1, $2, false)::text AS lsn';
const STOP_BEFORE_15 = 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_stop_backup(false, false)';
const START_FROM_15 = 'SELECT pg_backup_start($1, $2)::text AS lsn';
const STOP_FROM_15 = 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(false)';

const TRAITS: Record<SupportedMajor, MajorTraits> = {
  13: { major: 13, backupStartSql: START_BEFORE_15, backupStopSql: STOP_BEFORE_15, walPageMagic: 0xd106, hasWalSummaries: false, ...WAL_BEFORE_15 },
  14: { major: 14, backupStartSql: START_BEFORE_15, backupStopSql: STOP_BEFORE_15, walPageMagic: 0xd10d, hasWalSummaries: false, ...WAL_BEFORE_15 },
  15: { major: 15, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd110, hasWalSummaries: false, ...WAL_FROM_15, walXactStatsItemSize: 12 },
  16: { major: 16, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd113, hasWalSummaries: false, ...WAL_FROM_15, walXactStatsItemSize: 12 },
  17: { major: 17, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd116, hasWalSummaries: true, ...WAL_FROM_15, walXactStatsItemSize: 12 },
  18: { major: 18, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd118, hasWalSummaries: true, ...WAL_FROM_15, walXactStatsItemSize: 16 },
};

/** Major version of a server_version_num (150018 → 15). */
export function majorOf(serverVersionNum: number): number {
  return Math.floor(serverVersionNum / 10000);
}

export function traitsFor(serverVersionNum: number): MajorTraits {
  return traitsForMajor(majorOf(serverVersionNum));
}

/** Traits of a major version number (15), e.g. as recorded in a backup's metadata. */
export function traitsForMajor(major: number): MajorTraits {
  const traits = TRAITS[major as SupportedMajor];
  if (!traits) {
    throw new PgkeepError('SERVER_UNSUPPORTED', `PostgreSQL ${major} is not supported`, `pgkeep supports PostgreSQL ${SUPPORTED_MAJORS[0]} to ${SUPPORTED_MAJORS[SUPPORTED_MAJORS.length - 1]}`);
  }
  return traits;
}
