/**
 * archive-get --prefetch: which WAL segments a prefetch directory should hold after recovery was
 * served one, by name alone (wal-prefetch.ts does the I/O).
 *
 * A prefetched segment is named `<segment>.<content xxh64>`, the archive's checksum of it, so
 * that it is served only while the archive still holds that very content. Recovery asks for
 * segments in ascending order on one timeline, trying newer timelines first for each (a miss
 * each): entries at or before the served segment on its timeline will not be asked for again,
 * while entries of other timelines are left alone, since recovery may still be alternating
 * between them.
 */
import { parseWalFileName, walFileName } from './lsn.js';

const SEGMENT = /^[0-9A-F]{24}$/;
const PREFETCHED = /^([0-9A-F]{24})\.([0-9a-f]{16})$/;

/** Whether archive-get prefetches after serving `name`: plain segments only (not history, .partial or .backup files). */
export function isPrefetchable(name: string): boolean {
  return SEGMENT.test(name);
}

/** The name a prefetched segment is stored under: the archive's content checksum of it makes it unambiguous. */
export function prefetchedName(segment: string, checksum: string): string {
  return `${segment}.${checksum}`;
}

/** The `count` segment names after `name` on its timeline, in order. */
export function segmentsAfter(name: string, count: number, segSize: number): string[] {
  const { tli, segNo } = parseWalFileName(name, segSize);
  const names: string[] = [];
  for (let i = 1n; i <= BigInt(count); i++) names.push(walFileName(tli, segNo + i, segSize));
  return names;
}

export interface PrefetchPlan {
  /** Entries recovery has gone past: remove them. */
  stale: string[];
  /** Segments already held among the `depth` after the served one. */
  held: Set<string>;
  /** Whether to start a filler: no more than half of the `depth` segments ahead are held. */
  refill: boolean;
}

/**
 * What to do with a prefetch directory's `entries` after `served` (a segment name) was handed to
 * recovery, for a prefetch of `depth` segments. Names that are not prefetched segments (the lock,
 * a filler's temporary files) are none of this plan's business.
 */
export function planPrefetch(served: string, entries: readonly string[], depth: number, segSize: number): PrefetchPlan {
  const { tli, segNo } = parseWalFileName(served, segSize);
  const ahead = new Set(segmentsAfter(served, depth, segSize));
  const stale: string[] = [];
  const held = new Set<string>();
  for (const entry of entries) {
    const m = PREFETCHED.exec(entry);
    if (!m) continue;
    const segment = m[1]!;
    if (ahead.has(segment)) {
      held.add(segment);
      continue;
    }
    const other = parseWalFileName(segment, segSize);
    if (other.tli === tli && other.segNo <= segNo) stale.push(entry);
  }
  return { stale, held, refill: held.size <= Math.floor(depth / 2) };
}

/**
 * Whether recovery has already asked for `name`: `served` (the last segment it asked for, as
 * archive-get noted it) is on the same timeline and not before it. Anything unreadable says no.
 */
export function isServed(name: string, served: string, segSize: number): boolean {
  if (!SEGMENT.test(served)) return false;
  const a = parseWalFileName(name, segSize);
  const b = parseWalFileName(served, segSize);
  return a.tli === b.tli && a.segNo <= b.segNo;
}

/** The segment named by a prefetched entry, or undefined for any other name. */
export function prefetchedSegment(entry: string): string | undefined {
  return PREFETCHED.exec(entry)?.[1];
}
