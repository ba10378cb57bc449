import { describe, expect, it } from 'vitest';
import { isPrefetchable, isServed, planPrefetch, prefetchedName, prefetchedSegment, segmentsAfter } from '../../src/core/prefetch-plan.js';

const MB16 = 16 * 1024 * 1024;
const GB1 = 1024 * 1024 * 1024;
const ck = '0123456789abcdef';

describe('segmentsAfter', () => {
  it('counts on within the timeline, over the end of a log file (256 segments of 16 MB)', () => {
    expect(segmentsAfter('0000000300000001000000FE', 3, MB16)).toEqual(['0000000300000001000000FF', '000000030000000200000000', '000000030000000200000001']);
  });

  it('follows the segment size: 1 GB segments are 4 to a log file', () => {
    expect(segmentsAfter('000000010000000000000002', 2, GB1)).toEqual(['000000010000000000000003', '000000010000000100000000']);
  });

  it('gives none for a depth of 0', () => {
    expect(segmentsAfter('000000010000000000000002', 0, MB16)).toEqual([]);
  });
});

describe('planPrefetch', () => {
  const served = '000000010000000000000010';
  const entry = (seg: string) => prefetchedName(seg, ck);

  it('removes the entries at or before the served segment on its timeline, and keeps those ahead', () => {
    const entries = [entry('00000001000000000000000F'), entry('000000010000000000000010'), entry('000000010000000000000011'), entry('000000010000000000000012')];
    const plan = planPrefetch(served, entries, 4, MB16);
    expect(plan.stale).toEqual([entry('00000001000000000000000F'), entry('000000010000000000000010')]);
    expect([...plan.held]).toEqual(['000000010000000000000011', '000000010000000000000012']);
    // 2 of 4 ahead: no more than half, so a filler tops it up.
    expect(plan.refill).toBe(true);
  });

  it('starts no filler while more than half of the depth is held ahead', () => {
    const entries = ['11', '12', '13'].map((s) => entry(`0000000100000000000000${s}`));
    expect(planPrefetch(served, entries, 4, MB16).refill).toBe(false);
    expect(planPrefetch(served, entries.slice(0, 2), 4, MB16).refill).toBe(true);
  });

  it('leaves other timelines alone: recovery tries the newest timeline first for every segment', () => {
    const entries = [entry('00000002000000000000000F'), entry('000000020000000000000011'), entry('000000010000000000000011')];
    const plan = planPrefetch(served, entries, 2, MB16);
    expect(plan.stale).toEqual([]);
    expect([...plan.held]).toEqual(['000000010000000000000011']);
  });

  it('ignores the lock, temporary files and names it did not make', () => {
    const plan = planPrefetch(served, ['.lock', '.000000010000000000000011.123.tmp', '000000010000000000000011', 'README'], 2, MB16);
    expect(plan.stale).toEqual([]);
    expect(plan.held.size).toBe(0);
  });
});

describe('names', () => {
  it('prefetches plain segments only', () => {
    expect(isPrefetchable('000000010000000000000010')).toBe(true);
    for (const name of ['00000002.history', '000000010000000000000010.partial', '000000010000000000000010.00000028.backup']) expect(isPrefetchable(name)).toBe(false);
  });

  it('reads the segment back from an entry name, and nothing from other names', () => {
    expect(prefetchedSegment(prefetchedName('000000010000000000000010', ck))).toBe('000000010000000000000010');
    expect(prefetchedSegment('.lock')).toBeUndefined();
    expect(prefetchedSegment('000000010000000000000010.tmp')).toBeUndefined();
  });
});

describe('isServed', () => {
  it('says yes for the segment recovery last asked for and those before it, on its timeline only', () => {
    const served = '000000010000000000000010';
    expect(isServed('000000010000000000000010', served, MB16)).toBe(true);
    expect(isServed('00000001000000000000000F', served, MB16)).toBe(true);
    expect(isServed('000000010000000000000011', served, MB16)).toBe(false);
    expect(isServed('00000002000000000000000F', served, MB16)).toBe(false);
  });

  it('says no when the note is missing or torn', () => {
    expect(isServed('00000001000000000000000F', '', MB16)).toBe(false);
    expect(isServed('00000001000000000000000F', '0000000100000000000', MB16)).toBe(false);
  });
});
