/**
 * What an archive's segments of one timeline cover: contiguous runs, the gaps between them, and
 * which backups each run can serve (every segment from the backup's start LSN to its stop LSN is
 * in the run, so a restore of it can replay to consistency from the archive). Pure.
 */
import { segmentNumber, type Lsn } from './lsn.js';

export interface SegmentRun {
  first: bigint;
  last: bigint;
}

export interface CoverageBackup {
  id: string;
  timeline: number;
  startLsn: Lsn;
  stopLsn: Lsn | null;
}

export interface RunCoverage extends SegmentRun {
  backups: string[];
}

export interface TimelineCoverage {
  runs: RunCoverage[];
  gaps: SegmentRun[];
}

/** Runs of consecutive segment numbers; `segNos` ascending, without duplicates. */
export function segmentRuns(segNos: readonly bigint[]): SegmentRun[] {
  const runs: SegmentRun[] = [];
  for (const s of segNos) {
    const cur = runs[runs.length - 1];
    if (cur && s === cur.last + 1n) cur.last = s;
    else runs.push({ first: s, last: s });
  }
  return runs;
}

/** The missing ranges between consecutive runs. */
export function gapsBetween(runs: readonly SegmentRun[]): SegmentRun[] {
  const gaps: SegmentRun[] = [];
  for (let i = 1; i < runs.length; i++) gaps.push({ first: runs[i - 1]!.last + 1n, last: runs[i]!.first - 1n });
  return gaps;
}

/** Runs, gaps, and for each run the backups of `tli` (newest first, as given) whose WAL it holds. */
export function timelineCoverage(tli: number, segNos: readonly bigint[], backups: readonly CoverageBackup[], segSize: number): TimelineCoverage {
  const runs = segmentRuns(segNos);
  return {
    runs: runs.map((r) => ({
      ...r,
      backups: backups
        .filter((b) => b.timeline === tli && b.stopLsn !== null)
        .filter((b) => segmentNumber(b.startLsn, segSize) >= r.first && segmentNumber(b.stopLsn! - 1n, segSize) <= r.last)
        .map((b) => b.id),
    })),
    gaps: gapsBetween(runs),
  };
}
