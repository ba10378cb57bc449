/**
 * Whether a set of WAL summaries covers an LSN interval without a gap: pure, so that the rule
 * reads in one place. Summaries run from one redo pointer to the next, so a healthy series is
 * contiguous; a gap (summaries removed, the summarizer off for a while) means blocks changed in
 * it would be missed.
 */
import type { Lsn } from '../../../core/lsn.js';

export interface LsnRange {
  startLsn: Lsn;
  endLsn: Lsn;
}

/** The first LSN in [from, to) that no range covers, or undefined when the ranges cover it all. */
export function firstUncoveredLsn(ranges: readonly LsnRange[], from: Lsn, to: Lsn): Lsn | undefined {
  const sorted = [...ranges].sort((a, b) => (a.startLsn < b.startLsn ? -1 : a.startLsn > b.startLsn ? 1 : 0));
  let covered = from;
  for (const r of sorted) {
    if (covered >= to) break;
    if (r.startLsn > covered) return covered;
    if (r.endLsn > covered) covered = r.endLsn;
  }
  return covered >= to ? undefined : covered;
}
