import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/core/lsn.js';
import {
  offPathReason,
  parseTimelineHistory,
  pathIncludes,
  resolveTargetTimeline,
  rootTimelinePath,
  segmentFileOnPath,
  segmentFilesOnPath,
  spansBetween,
  timelineOfLsn,
  timelineOfSegment,
} from '../../src/core/timeline-history.js';

const SEG = 16 * 1024 * 1024;

// As PostgreSQL writes 00000003.history: one line per ancestor, tab-separated, with a reason.
const HISTORY_3 = '1\t0/3000158\tno recovery target specified\n\n# a comment\n2\t0/5A00000\tat restore point "rp"\n';

describe('timeline history', () => {
  it('parses ancestors and their switchpoints into spans, the timeline itself last and open', () => {
    const p = parseTimelineHistory(3, HISTORY_3);
    expect(p.tli).toBe(3);
    expect(p.spans).toEqual([
      { tli: 1, begin: 0n, end: parseLsn('0/3000158') },
      { tli: 2, begin: parseLsn('0/3000158'), end: parseLsn('0/5A00000') },
      { tli: 3, begin: parseLsn('0/5A00000'), end: undefined },
    ]);
  });

  it('refuses malformed or disordered files', () => {
    expect(() => parseTimelineHistory(2, 'one\t0/1\tx\n')).toThrow(/malformed line/);
    expect(() => parseTimelineHistory(3, '2\t0/5\tx\n1\t0/6\tx\n')).toThrow(/does not follow/);
    expect(() => parseTimelineHistory(2, '2\t0/5\tx\n')).toThrow(/not below/);
    expect(() => parseTimelineHistory(3, '1\t0/6\tx\n2\t0/5\tx\n')).toThrow(/goes backwards/);
  });

  it('reads the segment holding a switchpoint from the new timeline, earlier ones from the old', () => {
    const p = parseTimelineHistory(3, HISTORY_3);
    expect(timelineOfSegment(p, 2n, SEG)).toBe(1);
    expect(timelineOfSegment(p, 3n, SEG)).toBe(2); // 0/3000158 lies in segment 3
    expect(timelineOfSegment(p, 4n, SEG)).toBe(2);
    expect(timelineOfSegment(p, 5n, SEG)).toBe(3);
    expect(timelineOfSegment(p, 9n, SEG)).toBe(3);
    expect(segmentFileOnPath(p, 3n, SEG)).toBe('000000020000000000000003');
    expect(timelineOfLsn(p, parseLsn('0/3000157'))).toBe(1);
    expect(timelineOfLsn(p, parseLsn('0/3000158'))).toBe(2);
  });

  it('includes a backup only when its timeline is on the path and it ends before that timeline was left', () => {
    const p = parseTimelineHistory(3, HISTORY_3);
    expect(pathIncludes(p, 1, parseLsn('0/3000000'))).toBe(true);
    expect(pathIncludes(p, 1, parseLsn('0/3000158'))).toBe(true);
    expect(pathIncludes(p, 1, parseLsn('0/3000160'))).toBe(false);
    expect(pathIncludes(p, 3, parseLsn('9/0'))).toBe(true);
    expect(pathIncludes(p, 4, parseLsn('0/1'))).toBe(false);
    expect(pathIncludes(rootTimelinePath(1), 1, parseLsn('F/0'))).toBe(true);
  });

  it('says why a backup is off the path: a timeline not on it, or an end past the switch', () => {
    const p = parseTimelineHistory(3, HISTORY_3);
    expect(offPathReason(p, 1, parseLsn('0/3000158'))).toBeUndefined();
    expect(offPathReason(p, 3, parseLsn('0/9000000'))).toBeUndefined();
    expect(offPathReason(p, 1, parseLsn('0/3000159'))).toBe("timeline 3 branched off timeline 1 at LSN 0/3000158, before the backup's stop LSN 0/3000159");
    expect(offPathReason(p, 2, parseLsn('0/5A00001'))).toMatch(/branched off timeline 2 at LSN 0\/5A00000/);
    expect(offPathReason(p, 4, parseLsn('0/1'))).toBe('timeline 4 is not in the history of timeline 3');
    expect(offPathReason(rootTimelinePath(2), 1, parseLsn('0/1'))).toBe('timeline 1 is not in the history of timeline 2');
  });

  it('splits an LSN interval into the parts each timeline of the path holds', () => {
    const p = parseTimelineHistory(3, HISTORY_3);
    const [s1, s2] = [parseLsn('0/3000158'), parseLsn('0/5A00000')];
    expect(spansBetween(p, parseLsn('0/2000028'), parseLsn('0/7000028'))).toEqual([
      { tli: 1, from: parseLsn('0/2000028'), to: s1 },
      { tli: 2, from: s1, to: s2 },
      { tli: 3, from: s2, to: parseLsn('0/7000028') },
    ]);
    // Within one timeline, or starting exactly at a switch point: no empty parts.
    expect(spansBetween(p, parseLsn('0/4000000'), parseLsn('0/5000000'))).toEqual([{ tli: 2, from: parseLsn('0/4000000'), to: parseLsn('0/5000000') }]);
    expect(spansBetween(p, s2, parseLsn('0/6000000'))).toEqual([{ tli: 3, from: s2, to: parseLsn('0/6000000') }]);
  });

  it('names each segment of a range after the timeline recovery reads it from', () => {
    const p = parseTimelineHistory(3, HISTORY_3);
    expect(segmentFilesOnPath(p, parseLsn('0/2000028'), parseLsn('0/5B00000'), SEG)).toEqual([
      '000000010000000000000002',
      '000000020000000000000003',
      '000000020000000000000004',
      '000000030000000000000005',
    ]);
  });

  it("follows recovery_target_timeline: latest counts up from the backup's timeline without a hole", () => {
    expect(resolveTargetTimeline(undefined, 1, new Set([2, 3, 5]))).toBe(3);
    expect(resolveTargetTimeline('latest', 2, new Set())).toBe(2);
    expect(resolveTargetTimeline('current', 1, new Set([2]))).toBe(1);
    expect(resolveTargetTimeline('5', 1, new Set())).toBe(5);
    expect(() => resolveTargetTimeline('newest', 1, new Set())).toThrow(/invalid recovery target timeline/);
  });
});
