/**
 * Progress and end-of-operation figures, without I/O.
 *
 * A use case tells an OperationProgress (the command's bar or plain lines, or nothing) how much
 * file content it will go through, then each file as it completes. A Meter is such a sink that
 * also keeps the totals: files and content from the progress calls, and bytes read, written and
 * stored as the use case counts them from its results (FileEntry sizes, stored sizes), never from
 * the copy loops. `figures()` turns them into the numbers a command prints at its end and a
 * backup keeps in its metrics. docs/progress.md says what each operation counts.
 */

/** Contract: `start` before the first `advance` of a phase; `advance` once per completed file (or per batch of them). */
export interface OperationProgress {
  /**
   * A phase begins: the files and bytes of content it will go through. A later call starts a
   * new phase (a backup copies the data directory, then its WAL, then validates).
   */
  start(totalFiles: number, totalBytes: number, phase?: string): void;
  /** `files` more files are complete, holding `bytes` bytes of content. */
  advance(files: number, bytes: number): void;
  /** The phase is over (also called after a failure, when the caller can). */
  finish(): void;
}

export const silentProgress: OperationProgress = {
  start: () => undefined,
  advance: () => undefined,
  finish: () => undefined,
};

export interface ByteCounts {
  /** Bytes read from the source: the data directory (backup), the repository (the others). */
  read?: number;
  /** Bytes written: into the repository (backup, merge), the target directory (restore), the archive (export). */
  written?: number;
  /** Bytes in the repository that the result consists of or was read from. */
  stored?: number;
}

export interface OperationFigures {
  files: number;
  /** Bytes of file content gone through (what the progress counts). */
  contentBytes: number;
  bytesRead: number;
  bytesWritten: number;
  bytesStored: number;
  /** contentBytes / bytesStored; 0 when nothing is stored. */
  compressionRatio: number;
  wallMs: number;
  /** contentBytes per second of wall time, in MB (10^6 bytes). */
  throughputMBps: number;
  peakRssBytes: number;
}

/** The figures, from raw totals. Pure; rounded to what a person reads (ratio 2 decimals, MB/s 1). */
export function operationFigures(t: { files: number; contentBytes: number; bytesRead: number; bytesWritten: number; bytesStored: number }, wallMs: number, peakRssBytes: number): OperationFigures {
  return {
    ...t,
    compressionRatio: t.bytesStored > 0 ? round(t.contentBytes / t.bytesStored, 2) : 0,
    wallMs,
    throughputMBps: wallMs > 0 ? round(t.contentBytes / 1e6 / (wallMs / 1000), 1) : 0,
    peakRssBytes,
  };
}

/** Peak resident memory of this process so far (getrusage ru_maxrss, in bytes). */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * Counts what an operation goes through and passes every progress call on to `display`.
 * Wall time runs from construction to `figures()`; `now` is injectable for tests.
 */
export class Meter implements OperationProgress {
  private files = 0;
  private contentBytes = 0;
  private bytesRead = 0;
  private bytesWritten = 0;
  private bytesStored = 0;
  private readonly startedMs: number;

  constructor(
    private readonly display: OperationProgress = silentProgress,
    private readonly now: () => number = Date.now,
  ) {
    this.startedMs = now();
  }

  start(totalFiles: number, totalBytes: number, phase?: string): void {
    this.display.start(totalFiles, totalBytes, phase);
  }

  advance(files: number, bytes: number): void {
    this.files += files;
    this.contentBytes += bytes;
    this.display.advance(files, bytes);
  }

  finish(): void {
    this.display.finish();
  }

  count(c: ByteCounts): void {
    this.bytesRead += c.read ?? 0;
    this.bytesWritten += c.written ?? 0;
    this.bytesStored += c.stored ?? 0;
  }

  figures(peakRss: number = peakRssBytes()): OperationFigures {
    const t = { files: this.files, contentBytes: this.contentBytes, bytesRead: this.bytesRead, bytesWritten: this.bytesWritten, bytesStored: this.bytesStored };
    return operationFigures(t, this.now() - this.startedMs, peakRss);
  }
}

/** The keys a backup keeps in its metrics (show --format json `metrics`), beside its own. */
export function figuresToMetrics(f: OperationFigures): Record<string, number> {
  return { bytesRead: f.bytesRead, bytesWritten: f.bytesWritten, bytesStored: f.bytesStored, compressionRatio: f.compressionRatio, throughputMBps: f.throughputMBps };
}

function round(n: number, digits: number): number {
  const k = 10 ** digits;
  return Math.round(n * k) / k;
}
