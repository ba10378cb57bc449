/**
 * The change map of PostgreSQL 17+ WAL summaries: the union of the summaries between the
 * parent's start LSN and the new backup's, once the summarizer has reached the latter; after a
 * timeline switch, each timeline's summaries for its part of the interval.
 *
 * A relation with a limit block (truncated, created or dropped in the interval; relation 0: a
 * database created or dropped) is read whole by the copy: the summary says its length changed,
 * and reading it whole is what DELTA would do. Summaries that do not reach back to the parent's
 * start, or leave a gap, would miss changes: the backup is refused.
 */
import type { ChangeMap } from '../../../core/change-map.js';
import { formatLsn, type Lsn } from '../../../core/lsn.js';
import { PgkeepError } from '../../../errors.js';
import type { BackupSession } from '../../../postgres/backup-session.js';
import { spansBetween } from '../../../core/timeline-history.js';
import { walSummarizerState, walSummariesOverlapping, walSummaryContents, walSummaryStatus, type WalSummarizerState, type WalSummary } from '../../../postgres/wal-summary-api.js';
import { debugPhase } from '../../../debug.js';
import { SegmentBitmaps } from './segment-bitmaps.js';
import type { ServerChangeMapRequest } from './server-change-map-request.js';
import { firstUncoveredLsn } from './summary-coverage.js';

/** Give up when the summarizer has not moved for this long (it is stuck, or not running). */
const SUMMARIZER_IDLE_LIMIT_MS = 60_000;
/** The summarizer usually finishes within milliseconds of the checkpoint: poll fast, then back off. */
const FIRST_POLL_MS = 20;
const MAX_POLL_MS = 500;

const FALLBACK_HINT = 'take a FULL or DELTA backup (-b FULL or -b DELTA); PTRACK backups can follow it while summarize_wal stays on (summaries are kept for wal_summary_keep_time)';

export async function walSummaryChangeMap(session: BackupSession, req: ServerChangeMapRequest): Promise<ChangeMap> {
  const parentStart = req.parent.startLsn;
  // After a timeline switch the interval runs over the timelines of the path: each timeline's
  // summaries cover its part (PostgreSQL ends a summary at a switch point and goes on with the
  // new timeline from there).
  const parts = spansBetween(req.path, parentStart, req.startLsn);
  // Refuse at once, before any wait, when the summaries cannot reach back to the parent. One
  // round trip asks that and the summarizer's progress: each is paid while the data directory
  // is walked, which has the thread between its batches.
  const tli = parts[0]?.tli ?? req.path.tli;
  const { state, oldestStart } = await walSummaryStatus(session, tli);
  if (parts.length > 0 && oldestStart !== undefined && oldestStart > parentStart) throw predatesSummaries(req, tli, oldestStart);
  await waitForSummarizer(session, req.startLsn, state);
  debugPhase('WAL summarizer past the start LSN');

  const perTimeline: { tli: number; summaries: WalSummary[] }[] = [];
  for (const part of parts) {
    const summaries = await walSummariesOverlapping(session, part.tli, part.from, part.to);
    const gap = firstUncoveredLsn(summaries, part.from, part.to);
    if (gap !== undefined) {
      if (gap === parentStart) throw predatesSummaries(req, part.tli, summaries[0]?.startLsn);
      throw new PgkeepError('PARENT_INVALID', `the WAL summaries of timeline ${part.tli} have a gap at LSN ${formatLsn(gap)}, between parent backup ${req.parent.id} (LSN ${formatLsn(parentStart)}) and this backup (LSN ${formatLsn(req.startLsn)}): changes there would be missed`, FALLBACK_HINT);
    }
    perTimeline.push({ tli: part.tli, summaries });
  }

  const map = new SegmentBitmaps('wal-summary');
  for (const { tli, summaries } of perTimeline) {
    for await (const rows of walSummaryContents(session, tli, summaries)) {
      for (const row of rows) {
        if (row.kind === 'limit') map.markWhole(row.spcOid, row.dbOid, row.relNumber);
        else map.addBlocks({ spcOid: row.spcOid, dbOid: row.dbOid, relNumber: row.relNumber, fork: row.fork, segNo: row.segNo }, row.blocks);
      }
    }
  }
  return map;
}

function predatesSummaries(req: ServerChangeMapRequest, tli: number, oldest: Lsn | undefined): PgkeepError {
  const since = oldest === undefined ? 'no WAL summary covers it' : `the WAL summaries of timeline ${tli} begin at LSN ${formatLsn(oldest)}`;
  return new PgkeepError('PARENT_INVALID', `parent backup ${req.parent.id} started at LSN ${formatLsn(req.parent.startLsn)}, before the WAL summaries can vouch for changes (${since})`, FALLBACK_HINT);
}

/**
 * The summaries are trusted only up to summarized_lsn: wait until it reaches the new backup's
 * start LSN (the summarizer ends a summary at that checkpoint's redo pointer). The wait has no
 * fixed length while the summarizer makes progress, and fails once it stalls.
 */
async function waitForSummarizer(session: BackupSession, target: Lsn, first: WalSummarizerState): Promise<void> {
  let state = first;
  let lastProgress = Date.now();
  let pollMs = FIRST_POLL_MS;
  while (state.summarizedLsn < target) {
    if (Date.now() - lastProgress > SUMMARIZER_IDLE_LIMIT_MS) {
      throw new PgkeepError(
        'SERVER_ERROR',
        `the WAL summarizer has not reached this backup's start LSN ${formatLsn(target)} (summarized up to ${formatLsn(state.summarizedLsn)}, ${state.running ? 'no progress' : 'not running'} for ${SUMMARIZER_IDLE_LIMIT_MS / 1000} s)`,
        'check summarize_wal and the server log for the WAL summarizer, or take a DELTA backup (-b DELTA)',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
    const next = await walSummarizerState(session);
    if (next.summarizedLsn > state.summarizedLsn || next.pendingLsn > state.pendingLsn) lastProgress = Date.now();
    state = next;
  }
}
