/**
 * How `--progress` looks, and the end-of-command figures. On a terminal, a cli-progress bar on
 * stderr (files, bytes, rate, ETA), with INFO/WARNING lines written above it through `log`;
 * otherwise one plain line every few seconds and one when a phase ends:
 *
 *   progress: 1234/5678 files, 1.2/3.4 GB, 85 MB/s, ETA 00:00:27
 *
 * Rate and ETA come from ProgressState with an injected clock, so the formats are unit-tested.
 * Sizes are decimal (1 MB = 10^6 bytes), as in docs/benchmarks.md.
 */
import cliProgress from 'cli-progress';
import type { OperationFigures, OperationProgress } from '../app/progress.js';
import { formatBytes, formatBytesOf } from '../core/byte-units.js';

/** Plain lines come this often at most (and a phase's last one when it ends). */
export const PLAIN_INTERVAL_MS = 5000;

export interface ProgressSnapshot {
  phase: string;
  filesDone: number;
  totalFiles: number;
  bytesDone: number;
  totalBytes: number;
  /** Bytes per second since the phase started; 0 before any time has passed. */
  rateBps: number;
  /** Time left at that rate; undefined while the rate is unknown. */
  etaMs: number | undefined;
}

/** Where a phase stands: counts since `start`, averaged over the phase's elapsed time. */
export class ProgressState {
  private phase = '';
  private startedMs = 0;
  private filesDone = 0;
  private totalFiles = 0;
  private bytesDone = 0;
  private totalBytes = 0;

  constructor(private readonly now: () => number = Date.now) {}

  start(totalFiles: number, totalBytes: number, phase = ''): void {
    Object.assign(this, { phase, startedMs: this.now(), filesDone: 0, totalFiles, bytesDone: 0, totalBytes });
  }

  advance(files: number, bytes: number): void {
    this.filesDone += files;
    this.bytesDone += bytes;
  }

  snapshot(): ProgressSnapshot {
    const elapsedMs = Math.max(0, this.now() - this.startedMs);
    const rateBps = elapsedMs > 0 ? (this.bytesDone * 1000) / elapsedMs : 0;
    const left = Math.max(0, this.totalBytes - this.bytesDone);
    const etaMs = left === 0 ? 0 : rateBps > 0 ? (left / rateBps) * 1000 : undefined;
    return { phase: this.phase, filesDone: this.filesDone, totalFiles: this.totalFiles, bytesDone: this.bytesDone, totalBytes: this.totalBytes, rateBps, etaMs };
  }
}

// Re-exported: the figures line and the tests read sizes through this module.
export { formatBytes, formatBytesOf };

/** Bytes per second as "85 MB/s" (decimal MB, one decimal below 10). */
export function formatRate(bps: number): string {
  const mb = bps / 1e6;
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB/s`;
}

/** 27000 → "00:00:27"; undefined → "--:--:--". */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '--:--:--';
  const s = Math.round(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/** The plain line: "progress: 1234/5678 files, 1.2/3.4 GB, 85 MB/s, ETA 00:00:27" ("progress (wal): ..." in a named phase). */
export function progressLine(s: ProgressSnapshot): string {
  const label = s.phase ? `progress (${s.phase})` : 'progress';
  return `${label}: ${s.filesDone}/${s.totalFiles} files, ${formatBytesOf(s.bytesDone, s.totalBytes)}, ${formatRate(s.rateBps)}, ETA ${formatDuration(s.etaMs)}`;
}

/** The end-of-command figures, as one line (printed as INFO). */
export function figuresLine(f: FigureLine): string {
  return (
    `read ${formatBytes(f.bytesRead)}, written ${formatBytes(f.bytesWritten)}, stored ${formatBytes(f.bytesStored)}, ` +
    `ratio ${f.compressionRatio.toFixed(2)}, ${f.throughputMBps.toFixed(1)} MB/s over ${formatDuration(f.wallMs)}, peak RSS ${formatBytes(f.peakRssBytes)}`
  );
}

export type FigureLine = Pick<OperationFigures, 'bytesRead' | 'bytesWritten' | 'bytesStored' | 'compressionRatio' | 'throughputMBps' | 'wallMs' | 'peakRssBytes'>;

/** A backup's figures as its metrics keep them; undefined for a backup taken before they were kept. */
export function figuresFromMetrics(m: Readonly<Record<string, number>> | null): FigureLine | undefined {
  if (!m || m.bytesRead === undefined || m.bytesStored === undefined) return undefined;
  return {
    bytesRead: m.bytesRead,
    bytesWritten: m.bytesWritten ?? 0,
    bytesStored: m.bytesStored,
    compressionRatio: m.compressionRatio ?? 0,
    throughputMBps: m.throughputMBps ?? 0,
    wallMs: m.durationMs ?? 0,
    peakRssBytes: m.peakRssBytes ?? 0,
  };
}

/** A progress sink the command owns: `log` writes a message without garbling it, `close` ends the display. */
export interface ProgressDisplay extends OperationProgress {
  log(line: string): void;
  close(): void;
}

/** Without a terminal: a line every `intervalMs` while a phase runs, and its last one at finish. */
export class PlainProgress implements ProgressDisplay {
  private readonly state: ProgressState;
  private lastLineMs = 0;
  private active = false;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly write: (text: string) => void,
    private readonly now: () => number = Date.now,
    private readonly intervalMs: number = PLAIN_INTERVAL_MS,
    private readonly useTimer = true,
  ) {
    this.state = new ProgressState(now);
  }

  start(totalFiles: number, totalBytes: number, phase?: string): void {
    if (this.active) this.finish();
    this.state.start(totalFiles, totalBytes, phase);
    this.active = true;
    this.lastLineMs = this.now();
    if (this.useTimer && !this.timer) {
      // A large file may take longer than the interval: the timer keeps lines coming.
      this.timer = setInterval(() => this.tick(), Math.max(250, Math.floor(this.intervalMs / 5)));
      this.timer.unref();
    }
  }

  advance(files: number, bytes: number): void {
    this.state.advance(files, bytes);
    this.tick();
  }

  /** Writes a line if the interval has passed since the last one. */
  tick(): void {
    if (!this.active || this.now() - this.lastLineMs < this.intervalMs) return;
    this.line();
  }

  finish(): void {
    if (!this.active) return;
    this.line();
    this.active = false;
  }

  log(line: string): void {
    this.write(`${line}\n`);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.active = false;
  }

  private line(): void {
    this.lastLineMs = this.now();
    this.write(`${progressLine(this.state.snapshot())}\n`);
  }
}

/** On a terminal: a cli-progress bar (bytes as its value), messages logged above it. */
export class BarProgress implements ProgressDisplay {
  private readonly state = new ProgressState();
  private multi: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  start(totalFiles: number, totalBytes: number, phase?: string): void {
    this.finish();
    this.state.start(totalFiles, totalBytes, phase);
    this.multi = new cliProgress.MultiBar(
      {
        stream: this.stream,
        // Fits 80 columns for a whole run (the bar does not wrap: a longer line is cut).
        format: '{phase} [{bar}] {files} files, {bytes}, {rate}, ETA {eta_hms}',
        barsize: 16,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multi.create(Math.max(1, totalBytes), 0, this.payload());
  }

  advance(files: number, bytes: number): void {
    this.state.advance(files, bytes);
    this.bar?.update(this.state.snapshot().bytesDone, this.payload());
  }

  finish(): void {
    if (!this.multi) return;
    this.bar?.update(this.state.snapshot().bytesDone, this.payload());
    this.multi.stop();
    this.multi = undefined;
    this.bar = undefined;
  }

  log(line: string): void {
    if (this.multi) this.multi.log(`${line}\n`);
    else this.stream.write(`${line}\n`);
  }

  close(): void {
    this.finish();
  }

  private payload(): Record<string, string> {
    const s = this.state.snapshot();
    return {
      phase: s.phase || 'progress',
      files: `${s.filesDone}/${s.totalFiles}`,
      bytes: formatBytesOf(s.bytesDone, s.totalBytes),
      rate: formatRate(s.rateBps),
      eta_hms: formatDuration(s.etaMs),
    };
  }
}

/** The display `--progress` asks for: a bar on a terminal, plain lines otherwise. */
export function createProgressDisplay(stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  return stream.isTTY ? new BarProgress(stream) : new PlainProgress((text) => stream.write(text));
}
