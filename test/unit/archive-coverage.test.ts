import { describe, expect, it } from 'vitest';
import { gapsBetween, segmentRuns, timelineCoverage } from '../../src/core/archive-coverage.js';

const SEG = 16 * 1024 * 1024;
const at = (seg: number, offset = 0x28) => BigInt(seg) * BigInt(SEG) + BigInt(offset);

describe('archive coverage', () => {
  it('splits segments into runs and names the gaps between them', () => {
    const runs = segmentRuns([1n, 2n, 3n, 6n, 8n, 9n]);
    expect(runs).toEqual([{ first: 1n, last: 3n }, { first: 6n, last: 6n }, { first: 8n, last: 9n }]);
    expect(gapsBetween(runs)).toEqual([{ first: 4n, last: 5n }, { first: 7n, last: 7n }]);
    expect(segmentRuns([])).toEqual([]);
  });

  it('serves a backup from a run only when every segment from its start to its stop is in it, on its timeline', () => {
    const backups = [
      { id: 'INSIDE', timeline: 1, startLsn: at(2), stopLsn: at(3) },
      { id: 'ACROSS_GAP', timeline: 1, startLsn: at(3), stopLsn: at(6) },
      { id: 'STOP_AT_BOUNDARY', timeline: 1, startLsn: at(8), stopLsn: at(10, 0) },
      { id: 'OTHER_TLI', timeline: 2, startLsn: at(2), stopLsn: at(3) },
      { id: 'RUNNING', timeline: 1, startLsn: at(2), stopLsn: null },
    ];
    const cov = timelineCoverage(1, [1n, 2n, 3n, 6n, 8n, 9n], backups, SEG);
    expect(cov.runs.map((r) => r.backups)).toEqual([['INSIDE'], [], ['STOP_AT_BOUNDARY']]);
    expect(cov.gaps).toEqual([{ first: 4n, last: 5n }, { first: 7n, last: 7n }]);
  });
});
