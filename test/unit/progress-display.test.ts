// The --progress model and formats: rate and ETA from an injected clock, the plain line written
// every 5 s and at a phase's end, and the end-of-command figures a Meter computes.
import { describe, expect, it } from 'vitest';
import { Meter, operationFigures, type OperationProgress } from '../../src/app/progress.js';
import {
  figuresFromMetrics,
  figuresLine,
  formatBytes,
  formatBytesOf,
  formatDuration,
  formatRate,
  PlainProgress,
  progressLine,
  ProgressState,
} from '../../src/cli/progress-display.js';

/** A clock the test moves by hand. */
function fakeClock(startMs = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('ProgressState', () => {
  it('computes the rate over the phase and the ETA from what is left', () => {
    const clock = fakeClock();
    const s = new ProgressState(clock.now);
    s.start(5678, 3_400_000_000);
    clock.advance(10_000);
    s.advance(1234, 1_200_000_000);
    const snap = s.snapshot();
    expect(snap.rateBps).toBe(120_000_000);
    // 2.2 GB left at 120 MB/s: 18.3 s
    expect(snap.etaMs).toBeCloseTo(18_333, 0);
    expect(progressLine(snap)).toBe('progress: 1234/5678 files, 1.2/3.4 GB, 120 MB/s, ETA 00:00:18');
  });

  it('has no ETA before any byte, and 0 once everything is done', () => {
    const clock = fakeClock();
    const s = new ProgressState(clock.now);
    s.start(2, 2000, 'wal');
    expect(s.snapshot().etaMs).toBeUndefined();
    expect(progressLine(s.snapshot())).toBe('progress (wal): 0/2 files, 0.0/2.0 kB, 0.0 MB/s, ETA --:--:--');
    clock.advance(500);
    s.advance(2, 2000);
    expect(s.snapshot().etaMs).toBe(0);
    expect(s.snapshot().rateBps).toBe(4000);
  });

  it('starts a new phase from zero', () => {
    const clock = fakeClock();
    const s = new ProgressState(clock.now);
    s.start(1, 100);
    s.advance(1, 100);
    s.start(3, 300, 'validate X');
    expect(s.snapshot()).toMatchObject({ phase: 'validate X', filesDone: 0, totalFiles: 3, bytesDone: 0, totalBytes: 300 });
  });
});

describe('formats', () => {
  it('writes sizes in decimal units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_234_567)).toBe('1.2 MB');
    expect(formatBytes(123_456_789)).toBe('123 MB');
    expect(formatBytes(3_400_000_000)).toBe('3.4 GB');
    expect(formatBytesOf(1_200_000_000, 3_400_000_000)).toBe('1.2/3.4 GB');
    expect(formatBytesOf(512, 900)).toBe('512/900 B');
  });

  it('writes rates and durations', () => {
    expect(formatRate(85_400_000)).toBe('85 MB/s');
    expect(formatRate(2_345_678)).toBe('2.3 MB/s');
    expect(formatDuration(27_000)).toBe('00:00:27');
    expect(formatDuration(3_725_400)).toBe('01:02:05');
    expect(formatDuration(undefined)).toBe('--:--:--');
  });

  it('writes the end-of-command figures on one line', () => {
    const f = operationFigures({ files: 10, contentBytes: 300_000_000, bytesRead: 300_000_000, bytesWritten: 100_000_000, bytesStored: 100_000_000 }, 4000, 52_000_000);
    expect(f.compressionRatio).toBe(3);
    expect(f.throughputMBps).toBe(75);
    expect(figuresLine(f)).toBe('read 300 MB, written 100 MB, stored 100 MB, ratio 3.00, 75.0 MB/s over 00:00:04, peak RSS 52.0 MB');
  });

  it('reads the figures back from a backup\'s metrics, and nothing from older metrics', () => {
    const metrics = { files: 3, durationMs: 4000, peakRssBytes: 52_000_000, bytesRead: 300_000_000, bytesWritten: 100_000_000, bytesStored: 100_000_000, compressionRatio: 3, throughputMBps: 75 };
    expect(figuresLine(figuresFromMetrics(metrics)!)).toBe('read 300 MB, written 100 MB, stored 100 MB, ratio 3.00, 75.0 MB/s over 00:00:04, peak RSS 52.0 MB');
    expect(figuresFromMetrics({ files: 3, durationMs: 10 })).toBeUndefined();
    expect(figuresFromMetrics(null)).toBeUndefined();
  });
});

describe('PlainProgress', () => {
  it('writes a line when 5 s have passed, and the last one when the phase ends', () => {
    const clock = fakeClock();
    const out: string[] = [];
    const p = new PlainProgress((t) => out.push(t), clock.now, 5000, false);
    p.start(4, 4_000_000);
    clock.advance(1000);
    p.advance(1, 1_000_000);
    expect(out).toEqual([]);
    clock.advance(4000);
    p.advance(1, 1_000_000);
    expect(out).toEqual(['progress: 2/4 files, 2.0/4.0 MB, 0.4 MB/s, ETA 00:00:05\n']);
    clock.advance(1000);
    p.tick();
    expect(out).toHaveLength(1);
    p.advance(2, 2_000_000);
    p.finish();
    expect(out[1]).toBe('progress: 4/4 files, 4.0/4.0 MB, 0.7 MB/s, ETA 00:00:00\n');
    // finish is idempotent, and messages pass through as whole lines
    p.finish();
    p.log('INFO: hello');
    expect(out).toEqual([out[0], out[1], 'INFO: hello\n']);
    p.close();
  });

  it('ends the previous phase with its line when a new one starts', () => {
    const clock = fakeClock();
    const out: string[] = [];
    const p = new PlainProgress((t) => out.push(t), clock.now, 5000, false);
    p.start(1, 10);
    clock.advance(1000);
    p.advance(1, 10);
    p.start(2, 20, 'wal');
    clock.advance(1000);
    p.advance(2, 20);
    p.finish();
    expect(out.map((l) => l.split(':')[0])).toEqual(['progress', 'progress (wal)']);
  });
});

describe('Meter', () => {
  it('counts files and content from progress calls, bytes as told, and passes progress on', () => {
    const clock = fakeClock();
    const seen: string[] = [];
    const display: OperationProgress = {
      start: (f, b, phase) => seen.push(`start ${f} ${b} ${phase ?? ''}`),
      advance: (f, b) => seen.push(`advance ${f} ${b}`),
      finish: () => seen.push('finish'),
    };
    const m = new Meter(display, clock.now);
    m.start(2, 8_000_000);
    m.advance(1, 6_000_000);
    m.advance(1, 2_000_000);
    m.finish();
    m.count({ read: 8_000_000, written: 2_000_000, stored: 2_000_000 });
    clock.advance(2000);
    const f = m.figures(1_000_000);
    expect(seen).toEqual(['start 2 8000000 ', 'advance 1 6000000', 'advance 1 2000000', 'finish']);
    expect(f).toEqual({ files: 2, contentBytes: 8_000_000, bytesRead: 8_000_000, bytesWritten: 2_000_000, bytesStored: 2_000_000, compressionRatio: 4, wallMs: 2000, throughputMBps: 4, peakRssBytes: 1_000_000 });
  });

  it('reports a ratio and rate of 0 rather than dividing by zero', () => {
    const clock = fakeClock();
    const f = new Meter(undefined, clock.now).figures(0);
    expect(f.compressionRatio).toBe(0);
    expect(f.throughputMBps).toBe(0);
  });
});
