/**
 * Reads a relation file in large sequential chunks and checks every page on the way.
 *
 * A page that fails its header or checksum check is read again on its own: PostgreSQL may have
 * been writing it (a torn read). If it still fails but its LSN is at or past the backup's start
 * LSN, WAL replay rewrites it from a full-page image during recovery, so it is accepted; but
 * only up to the stop LSN, which no page written during the backup can pass (WAL before data; on
 * a standby, minRecoveryPoint), checked once the stop LSN is known (assertTornPagesBeforeStop).
 * Anything else is real corruption and stops the backup, naming file and block, unless block
 * validation is skipped. Only whole pages are returned: a trailing partial page of a file being
 * extended is left out (replay extends the file again).
 */
import { formatLsn } from '../../core/lsn.js';
import { debugLine } from '../../debug.js';
import { PgkeepError } from '../../errors.js';
import { openSourceFile, type SourceFile } from './source-file.js';
import { passesPageCheck, readPageLsn, verifyPage } from '../../postgres/page.js';

/** Bytes per sequential read of a data file: 128 pages of 8 KiB, one buffer per worker. */
export const READ_BUFFER_BYTES = 1024 * 1024;

export interface PageCheckOptions {
  blockSize: number;
  checksumsEnabled: boolean;
  /** Pages at or past this LSN may be torn and are accepted. */
  startLsn: bigint;
  /** false with --skip-block-validation. */
  verify: boolean;
  /** Absolute block number of the file's first block (segment number × RELSEG_BLOCKS). */
  firstBlock: number;
}

export interface PageCheckCounters {
  pagesRead: number;
  pagesReread: number;
  pagesTornAccepted: number;
  /** Of the pages taken as torn, the one with the highest LSN: checked against the stop LSN. */
  latestTorn?: TornPage | undefined;
}

/** A page that failed its checks twice and was taken as torn, for its LSN. */
export interface TornPage {
  path: string;
  /** Block within its file. */
  block: number;
  lsn: bigint;
}

const CORRUPT_PAGE_HINT = 'check the cluster with pg_checksums or amcheck; --skip-block-validation backs up the page as it is';

/** Keeps in `into` whichever of its latest torn page and `page` has the higher LSN. */
export function noteTornPage(into: PageCheckCounters, page: TornPage | undefined): void {
  if (page !== undefined && (into.latestTorn === undefined || page.lsn > into.latestTorn.lsn)) into.latestTorn = page;
}

/**
 * Refuses the backup when a page taken as torn has an LSN past the stop LSN: no write during the
 * backup could have made it, so it is damage (a page LSN from the future), not a torn read.
 */
export function assertTornPagesBeforeStop(counters: PageCheckCounters, stopLsn: bigint): void {
  const t = counters.latestTorn;
  if (t === undefined || t.lsn <= stopLsn) return;
  throw new PgkeepError(
    'PAGE_CORRUPT',
    `corrupt page in ${t.path}, block ${t.block} (it fails its checks, and its LSN ${formatLsn(t.lsn)} is past the backup's stop LSN ${formatLsn(stopLsn)}: no write during the backup made it)`,
    CORRUPT_PAGE_HINT,
  );
}

/** A byte range of a file: `offset` and `length` whole pages' worth (one part of a parted copy). */
export interface FileRange {
  offset: number;
  length: number;
}

/**
 * Yields views of `buffer` holding consecutive whole pages from the start of the file (or of
 * `range`, up to its end or the file's). Each view is only valid until the next iteration.
 * Returns quietly with nothing if the file vanished.
 */
export async function* readDataFilePages(absPath: string, relPath: string, buffer: Buffer, opts: PageCheckOptions, counters: PageCheckCounters, range?: FileRange): AsyncGenerator<Buffer> {
  const fh = openSourceFile(absPath);
  if (!fh) return;
  const bs = opts.blockSize;
  const chunkBytes = buffer.length - (buffer.length % bs);
  const end = range ? range.offset + range.length : Number.POSITIVE_INFINITY;
  try {
    let position = range?.offset ?? 0;
    while (position < end) {
      const want = Math.min(chunkBytes, end - position);
      const bytesRead = await fh.read(buffer, 0, want, position);
      const whole = bytesRead - (bytesRead % bs);
      if (whole === 0) return;
      if (opts.verify) await checkPages(fh, relPath, buffer, whole, position / bs, opts, counters);
      counters.pagesRead += whole / bs;
      yield buffer.subarray(0, whole);
      position += whole;
      if (bytesRead < want) return;
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads of listed pages kept in flight at once, each into its own share of the buffer. */
export const SELECTED_READS_IN_FLIGHT = 8;

/**
 * When a synchronous read of listed pages came from the disk rather than the page cache: it took
 * longer than this base plus SLOW_SYNC_READ_NS_PER_KIB for each KiB read. Measured here with
 * random reads of a 640 MB relation file (200 each, µs, p50 / p90): from the page cache 3.7 / 9.5
 * for 8 KiB and 22 / 38 for 128 KiB (a slot); from the disk 80 / 91 and 235 / 259. The bound
 * (34 µs for a page, 94 µs for a slot) lies between them.
 */
export const SLOW_SYNC_READ_BASE_NS = 30_000;
export const SLOW_SYNC_READ_NS_PER_KIB = 500;
/**
 * A file's reads go asynchronous once this many of its synchronous reads were slow, and they
 * are at least a quarter of its reads so far: a cached file has the odd slow read too (the
 * thread lost its core, a collection ran: about 1% here), a file on disk is slow every time.
 */
export const SLOW_SYNC_READS_TO_SWITCH = 3;

/**
 * Reads only the listed blocks (ascending, relative to the file), in runs of consecutive blocks,
 * checked like readDataFilePages, and hands the runs in order to `onRun`. Blocks past the end of
 * the file are skipped (it was truncated since the map was made). Does nothing if the file
 * vanished. Each run's pages are only valid until `onRun` returns, or its promise resolves.
 *
 * Changed pages are scattered over the file, and a file not in memory makes each read wait for
 * the disk. Read one after another, those waits add up; so up to SELECTED_READS_IN_FLIGHT reads
 * are in flight at once, each into its own slot of `buffer` (a run longer than a slot is read as
 * several), and the runs are handed on in order. Memory stays the one buffer.
 *
 * But an asynchronous read is a trip through libuv's thread pool (40-90 µs here), many times
 * what copying a page from the page cache takes, and the pages a PTRACK backup lists were
 * mostly written recently: in memory. So a file's runs are read synchronously while they come
 * from the page cache, and asynchronously once its reads show it is on disk (SLOW_SYNC_READ_BASE_NS:
 * `slowReadBaseNs`, which tests set to -Infinity or Infinity; docs/performance.md, "Listed pages read
 * synchronously while cached"). A callback rather than an async generator, and `onRun` may
 * return nothing: a run read synchronously, whose pages pass their checks, is then handed on
 * without a wait (docs/performance.md, "Changed pages gathered without a wait").
 */
export async function readSelectedPages(
  absPath: string, relPath: string, blocks: readonly number[], buffer: Buffer, opts: PageCheckOptions, counters: PageCheckCounters,
  onRun: (start: number, pages: Buffer) => Promise<void> | undefined, slowReadBaseNs = SLOW_SYNC_READ_BASE_NS,
): Promise<void> {
  const fh = openSourceFile(absPath);
  if (!fh) return;
  const bs = opts.blockSize;
  const slotBytes = Math.max(1, Math.floor(buffer.length / SELECTED_READS_IN_FLIGHT / bs)) * bs;
  const slotCount = Math.max(1, Math.min(SELECTED_READS_IN_FLIGHT, Math.floor(buffer.length / slotBytes)));
  // Run k is read into slot k % slotCount, which is free again once run k - slotCount was handed on.
  const slotOf = (k: number) => buffer.subarray((k % slotCount) * slotBytes, ((k % slotCount) + 1) * slotBytes);
  const runs = consecutiveRuns(blocks, slotBytes / bs);
  const reads: (Promise<number> | number)[] = [];
  let syncReads = 0;
  let slowReads = 0;
  let cached = true;
  try {
    for (let i = 0; i < runs.length; i++) {
      while (reads.length < slotCount && i + reads.length < runs.length) {
        const run = runs[i + reads.length]!;
        const slot = slotOf(i + reads.length);
        if (cached) {
          const t0 = performance.now();
          reads.push(fh.readNow(slot, 0, run.count * bs, run.start * bs));
          const tookNs = (performance.now() - t0) * 1e6;
          syncReads++;
          if (tookNs > slowReadBaseNs + (run.count * bs / 1024) * SLOW_SYNC_READ_NS_PER_KIB) slowReads++;
          cached = slowReads < SLOW_SYNC_READS_TO_SWITCH || slowReads * 4 < syncReads;
          if (!cached) debugLine(`${relPath}: its listed pages come from disk, read asynchronously after ${syncReads} of ${runs.length} reads`);
          // A synchronous read is done: hand its run on before reading ahead.
          break;
        }
        const read = fh.read(slot, 0, run.count * bs, run.start * bs);
        // Awaited in its turn; a failure before then must not count as unhandled.
        read.catch(() => undefined);
        reads.push(read);
      }
      const next = reads.shift()!;
      const bytesRead = typeof next === 'number' ? next : await next;
      const whole = bytesRead - (bytesRead % bs);
      if (whole === 0) continue;
      const slot = slotOf(i);
      if (opts.verify) {
        const rechecking = checkPages(fh, relPath, slot, whole, runs[i]!.start, opts, counters);
        if (rechecking) await rechecking;
      }
      counters.pagesRead += whole / bs;
      const handing = onRun(runs[i]!.start, slot.subarray(0, whole));
      if (handing) await handing;
    }
  } finally {
    // Reads still in flight use the descriptor: they end before it is closed and its number reused.
    await Promise.allSettled(reads);
    await fh.close().catch(() => undefined);
  }
}

/** Ascending blocks as runs of consecutive blocks of at most `maxPages` each. */
function consecutiveRuns(blocks: readonly number[], maxPages: number): { start: number; count: number }[] {
  const runs: { start: number; count: number }[] = [];
  let i = 0;
  while (i < blocks.length) {
    const start = blocks[i]!;
    let n = 1;
    while (i + n < blocks.length && n < maxPages && blocks[i + n] === start + n) n++;
    runs.push({ start, count: n });
    i += n;
  }
  return runs;
}

/**
 * Checks `length` bytes of pages in `buffer`: nothing to wait for (undefined) when all pass, as
 * nearly all do; else a promise that reads each failing page again (recheckPages).
 */
function checkPages(fh: SourceFile, relPath: string, buffer: Buffer, length: number, firstPageInFile: number, opts: PageCheckOptions, counters: PageCheckCounters): Promise<void> | undefined {
  const bs = opts.blockSize;
  for (let off = 0; off < length; off += bs) {
    if (!passesPageCheck(verifyPage(buffer, off, bs, opts.firstBlock + firstPageInFile + off / bs, opts.checksumsEnabled))) {
      return recheckPages(fh, relPath, buffer, length, firstPageInFile, opts, counters, off);
    }
  }
  return undefined;
}

/** checkPages from the first failing page (at `from`) on: a page that fails is read again, then judged. */
async function recheckPages(fh: SourceFile, relPath: string, buffer: Buffer, length: number, firstPageInFile: number, opts: PageCheckOptions, counters: PageCheckCounters, from: number): Promise<void> {
  const bs = opts.blockSize;
  for (let off = from; off < length; off += bs) {
    const blockInFile = firstPageInFile + off / bs;
    const absBlock = opts.firstBlock + blockInFile;
    const verdict = verifyPage(buffer, off, bs, absBlock, opts.checksumsEnabled);
    if (passesPageCheck(verdict)) continue;

    // Read the page again on its own, into place: a concurrent write may have torn the first read.
    counters.pagesReread++;
    const bytesRead = await fh.read(buffer, off, bs, blockInFile * bs);
    if (bytesRead < bs) {
      // The file was truncated under us: the rest is gone, and replay truncates it too.
      buffer.fill(0, off + bytesRead, off + bs);
      continue;
    }
    const again = verifyPage(buffer, off, bs, absBlock, opts.checksumsEnabled);
    if (passesPageCheck(again)) continue;
    const lsn = readPageLsn(buffer, off);
    if (lsn >= opts.startLsn) {
      counters.pagesTornAccepted++;
      noteTornPage(counters, { path: relPath, block: blockInFile, lsn });
      continue;
    }
    throw new PgkeepError(
      'PAGE_CORRUPT',
      `corrupt page in ${relPath}, block ${blockInFile} (${again === 'bad-checksum' ? 'checksum mismatch' : 'invalid page header'})`,
      CORRUPT_PAGE_HINT,
    );
  }
}
