/**
 * `show --archive`: per instance and timeline, the archived range (first and last segment), its
 * gaps, where the timeline branched off (its history file), and which backups each contiguous
 * run of segments can serve. The public JSON shape: add keys, never rename or remove them.
 */
import { USABLE_STATUSES } from '../../core/chain.js';
import { timelineCoverage } from '../../core/archive-coverage.js';
import { formatLsn, walFileName } from '../../core/lsn.js';
import { loadArchiveContents } from '../wal/archive-contents.js';
import type { RepoContext } from '../repo-context.js';

export interface SegmentRangeJson {
  first_segment: string;
  last_segment: string;
  segments: number;
}

export interface ArchiveRangeJson extends SegmentRangeJson {
  /** The LSNs the run covers: from its first segment's start to its last segment's end. */
  start_lsn: string;
  end_lsn: string;
  /** Backups whose WAL from start to stop LSN lies in this run. */
  backups: string[];
}

export interface ArchiveTimelineJson {
  timeline: number;
  /** From the timeline's history file: the timeline it branched from, and where. */
  parent_timeline: number | null;
  switchpoint: string | null;
  first_segment: string | null;
  last_segment: string | null;
  segments: number;
  gaps: SegmentRangeJson[];
  ranges: ArchiveRangeJson[];
}

export interface InstanceArchiveJson {
  instance: string;
  wal_segment_size: number;
  timelines: ArchiveTimelineJson[];
  /** .partial and .backup files (recovery does not read them). */
  other_files: number;
}

export async function showArchive(ctx: RepoContext, instances: readonly string[]): Promise<InstanceArchiveJson[]> {
  const out: InstanceArchiveJson[] = [];
  for (const name of [...instances].sort()) {
    const segSize = ctx.catalog.requireInstance(name).walSegSize;
    const contents = await loadArchiveContents(ctx.store, name, segSize);
    const backups = ctx.catalog.listBackups(name).filter((b) => USABLE_STATUSES.has(b.status));
    const tlis = [...new Set([...contents.segments.keys(), ...contents.histories.keys()])].sort((a, b) => a - b);
    const timelines = tlis.map((tli): ArchiveTimelineJson => {
      const segNos = contents.segments.get(tli) ?? [];
      const seg = (s: bigint) => walFileName(tli, s, segSize);
      const range = (first: bigint, last: bigint): SegmentRangeJson => ({ first_segment: seg(first), last_segment: seg(last), segments: Number(last - first + 1n) });
      const cov = timelineCoverage(tli, segNos, backups, segSize);
      const spans = contents.histories.get(tli)?.spans;
      const parent = spans && spans.length > 1 ? spans[spans.length - 2]! : undefined;
      return {
        timeline: tli,
        parent_timeline: parent?.tli ?? null,
        switchpoint: parent?.end === undefined ? null : formatLsn(parent.end),
        first_segment: segNos.length ? seg(segNos[0]!) : null,
        last_segment: segNos.length ? seg(segNos[segNos.length - 1]!) : null,
        segments: segNos.length,
        gaps: cov.gaps.map((g) => range(g.first, g.last)),
        ranges: cov.runs.map((r) => ({
          ...range(r.first, r.last),
          start_lsn: formatLsn(r.first * BigInt(segSize)),
          end_lsn: formatLsn((r.last + 1n) * BigInt(segSize)),
          backups: r.backups,
        })),
      };
    });
    const other = [...contents.names].filter((n) => n.endsWith('.partial') || n.endsWith('.backup')).length;
    out.push({ instance: name, wal_segment_size: segSize, timelines, other_files: other });
  }
  return out;
}
