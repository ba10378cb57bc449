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
}

const START_BEFORE_15 = 'SELECT pg_start_backup($1, $2, false)::text AS lsn';
const STOP_BEFORE_15 = 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_stop_backup(false, false)';
const START_FROM_15 = 'SELECT pg_backup_start($1, $2)::text AS lsn';
const STOP_FROM_15 = 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(false)';

const TRAITS: Record<SupportedMajor, MajorTraits> = {
  13: { major: 13, backupStartSql: START_BEFORE_15, backupStopSql: STOP_BEFORE_15, walPageMagic: 0xd106, hasWalSummaries: false },
  14: { major: 14, backupStartSql: START_BEFORE_15, backupStopSql: STOP_BEFORE_15, walPageMagic: 0xd10d, hasWalSummaries: false },
  15: { major: 15, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd110, hasWalSummaries: false },
  16: { major: 16, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd113, hasWalSummaries: false },
  17: { major: 17, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd116, hasWalSummaries: true },
  18: { major: 18, backupStartSql: START_FROM_15, backupStopSql: STOP_FROM_15, walPageMagic: 0xd118, hasWalSummaries: true },
};

/** Major version of a server_version_num (150018 → 15). */
export function majorOf(serverVersionNum: number): number {
  return Math.floor(serverVersionNum / 10000);
}

export function traitsFor(serverVersionNum: number): MajorTraits {
  const major = majorOf(serverVersionNum);
  const traits = TRAITS[major as SupportedMajor];
  if (!traits) {
    throw new PgkeepError('SERVER_UNSUPPORTED', `PostgreSQL ${major} is not supported`, `pgkeep supports PostgreSQL ${SUPPORTED_MAJORS[0]} to ${SUPPORTED_MAJORS[SUPPORTED_MAJORS.length - 1]}`);
  }
  return traits;
}
