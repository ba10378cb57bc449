/**
 * How many bytes a backup about to start will add to the repository, estimated before it starts
 * so that a repository without room refuses it at once instead of failing hours in. Pure: the
 * caller supplies the data directory's size and the instance's earlier backups.
 *
 * The estimate errs high. Stored bytes are the data directory's size times the stored/read ratio
 * of the newest finished backup of the same mode and compression (for an incremental mode
 * without one, of the newest FULL with that compression: an incremental backup stores at most
 * what a FULL would), plus a fifth for growth and two WAL segments for the WAL a backup carries;
 * with no history the ratio is 1, as if nothing compressed.
 */
import type { BackupMode, BackupRecord, CompressAlg } from './backup-types.js';
import { formatBytes } from './byte-units.js';

export interface SpaceEstimateInput {
  mode: BackupMode;
  compressAlg: CompressAlg;
  /** Bytes of the files a FULL backup would read. */
  pgdataBytes: number;
  walSegSize: number;
  /** The instance's backups, any order. */
  history: readonly SizedBackup[];
}

export type SizedBackup = Pick<BackupRecord, 'id' | 'mode' | 'status' | 'compressAlg' | 'pgdataBytes' | 'storedBytes' | 'startTime'>;

export interface SpaceEstimate {
  bytes: number;
  /** One phrase saying what the figure rests on, for the refusal message. */
  basis: string;
}

const GROWTH_MARGIN = 1.2;
/** The statuses of the backups an estimate learns from. */
export const FINISHED_STATUSES = ['DONE', 'OK'] as const;
const FINISHED = new Set<string>(FINISHED_STATUSES);

export function estimateBackupSpace(input: SpaceEstimateInput): SpaceEstimate {
  const finished = input.history
    .filter((b) => FINISHED.has(b.status) && b.compressAlg === input.compressAlg && b.pgdataBytes > 0)
    .sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
  const sameMode = finished.find((b) => b.mode === input.mode);
  const reference = sameMode ?? finished.find((b) => b.mode === 'FULL');
  const ratio = reference ? Math.min(1, reference.storedBytes / reference.pgdataBytes) : 1;
  const bytes = Math.ceil(input.pgdataBytes * ratio * GROWTH_MARGIN) + 2 * input.walSegSize;
  const basis = reference
    ? `${formatPercent(ratio)} of the ${formatBytes(input.pgdataBytes)} data directory, as backup ${reference.id} (${reference.mode}, ${input.compressAlg}) stored, plus a fifth`
    : `the ${formatBytes(input.pgdataBytes)} data directory uncompressed (no earlier ${input.compressAlg} backup to learn a ratio from), plus a fifth`;
  return { bytes, basis };
}

function formatPercent(r: number): string {
  return `${(r * 100).toFixed(r < 0.1 ? 1 : 0)}%`;
}
