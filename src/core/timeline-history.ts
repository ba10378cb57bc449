/**
 * Timeline history files (`<tli>.history`, written by PostgreSQL at each promotion) and what
 * they say: which timeline's WAL covers which LSN range on the way to a given timeline.
 *
 * A history file of timeline N lists every ancestor, oldest first, one per line:
 *
 *   parentTLI <tab> switchpoint <tab> reason
 *
 * meaning "timeline parentTLI ended at switchpoint" (its successor on the list, or N, begins
 * there). Blank lines and lines starting with '#' are comments (timeline.c, readTimeLineHistory).
 *
 * Recovery reads segment s from the newest timeline on the path whose first segment is at or
 * before s (XLogFileReadAnyTLI): the segment holding a switchpoint comes from the new timeline,
 * whose copy starts with the old timeline's bytes. Pure: the caller reads the files.
 */
import { PgkeepError } from '../errors.js';
import { formatLsn, parseLsn, segmentNumber, walFileName, type Lsn } from './lsn.js';

/** One timeline on the path to a target timeline, covering [begin, end) (end undefined: open). */
export interface TimelineSpan {
  tli: number;
  begin: Lsn;
  end: Lsn | undefined;
}

/** The path of timelines leading to `tli`, oldest first; the last span is `tli` itself, open-ended. */
export interface TimelinePath {
  tli: number;
  spans: TimelineSpan[];
}

/** The name of timeline `tli`'s history file, as PostgreSQL writes it in pg_wal and archives it (`00000002.history`). */
export function historyFileName(tli: number): string {
  return `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`;
}

/** Parses the text of `<tli>.history`; WAL_CORRUPT when a line is malformed or out of order. */
export function parseTimelineHistory(tli: number, text: string): TimelinePath {
  const spans: TimelineSpan[] = [];
  let begin = 0n;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s|$)/.exec(line);
    if (!m) throw historyError(tli, `malformed line "${line}"`);
    const parent = Number(m[1]);
    const switchpoint = parseLsn(m[2]!);
    const prev = spans[spans.length - 1];
    if (prev && parent <= prev.tli) throw historyError(tli, `timeline ${parent} does not follow timeline ${prev.tli}`);
    if (parent >= tli) throw historyError(tli, `parent timeline ${parent} is not below ${tli}`);
    if (switchpoint < begin) throw historyError(tli, `switchpoint ${formatLsn(switchpoint)} goes backwards`);
    spans.push({ tli: parent, begin, end: switchpoint });
    begin = switchpoint;
  }
  spans.push({ tli, begin, end: undefined });
  return { tli, spans };
}

/** The path of a timeline that has no history file (timeline 1, or one whose file is unknown). */
export function rootTimelinePath(tli: number): TimelinePath {
  return { tli, spans: [{ tli, begin: 0n, end: undefined }] };
}

/**
 * The path to `tli` given the history files known: timeline 1 has none, and a backup's own
 * timeline without one is taken alone (recovery does the same); otherwise undefined.
 */
export function knownPath(histories: ReadonlyMap<number, TimelinePath>, tli: number, backupTli: number): TimelinePath | undefined {
  return histories.get(tli) ?? (tli === 1 || tli === backupTli ? rootTimelinePath(tli) : undefined);
}

/**
 * True when a backup taken on `tli` and consistent at `stopLsn` lies on the path: recovery can
 * start from it and follow the path (PostgreSQL's "requested timeline is not a child of this
 * server's history" / "does not contain minimum recovery point" checks).
 */
export function pathIncludes(path: TimelinePath, tli: number, stopLsn: Lsn): boolean {
  const span = path.spans.find((s) => s.tli === tli);
  return span !== undefined && (span.end === undefined || stopLsn <= span.end);
}

/**
 * Why a backup taken on `tli` and consistent at `stopLsn` does not lie on the path, or
 * undefined when it does (pathIncludes): the words for an error message.
 */
export function offPathReason(path: TimelinePath, tli: number, stopLsn: Lsn): string | undefined {
  const span = path.spans.find((s) => s.tli === tli);
  if (span === undefined) return `timeline ${tli} is not in the history of timeline ${path.tli}`;
  if (span.end !== undefined && stopLsn > span.end) return `timeline ${path.tli} branched off timeline ${tli} at LSN ${formatLsn(span.end)}, before the backup's stop LSN ${formatLsn(stopLsn)}`;
  return undefined;
}

/** The parts of [from, to) that each timeline of the path holds, oldest first; empty parts left out. */
export function spansBetween(path: TimelinePath, from: Lsn, to: Lsn): { tli: number; from: Lsn; to: Lsn }[] {
  const parts: { tli: number; from: Lsn; to: Lsn }[] = [];
  for (const s of path.spans) {
    const a = s.begin > from ? s.begin : from;
    const b = s.end !== undefined && s.end < to ? s.end : to;
    if (a < b) parts.push({ tli: s.tli, from: a, to: b });
  }
  return parts;
}

/** File names of the segments from the one holding `start` to the one holding `end`, each from the timeline recovery reads it from. */
export function segmentFilesOnPath(path: TimelinePath, start: Lsn, end: Lsn, segSize: number): string[] {
  const names: string[] = [];
  for (let s = segmentNumber(start, segSize); s <= segmentNumber(end, segSize); s++) names.push(segmentFileOnPath(path, s, segSize));
  return names;
}

/** The timeline whose file of segment `segNo` recovery reads on this path. */
export function timelineOfSegment(path: TimelinePath, segNo: bigint, segSize: number): number {
  let tli = path.spans[0]!.tli;
  for (const s of path.spans) if (segmentNumber(s.begin, segSize) <= segNo) tli = s.tli;
  return tli;
}

/** The timeline whose WAL holds `lsn` on this path. */
export function timelineOfLsn(path: TimelinePath, lsn: Lsn): number {
  let tli = path.spans[0]!.tli;
  for (const s of path.spans) if (s.begin <= lsn) tli = s.tli;
  return tli;
}

/** File name of segment `segNo` on this path. */
export function segmentFileOnPath(path: TimelinePath, segNo: bigint, segSize: number): string {
  return walFileName(timelineOfSegment(path, segNo, segSize), segNo, segSize);
}

/**
 * The timeline recovery follows for recovery_target_timeline: 'current' is the backup's own;
 * a number is itself; 'latest' (the default) is what findNewestTimeLine finds, the highest
 * timeline whose history file exists counting up from the backup's without a hole.
 */
export function resolveTargetTimeline(request: string | undefined, backupTli: number, historyTlis: ReadonlySet<number>): number {
  const r = (request ?? 'latest').trim().toLowerCase();
  if (r === 'current') return backupTli;
  if (r === 'latest') {
    let tli = backupTli;
    while (historyTlis.has(tli + 1)) tli++;
    return tli;
  }
  if (!/^\d+$/.test(r) || Number(r) < 1 || Number(r) > 0xffffffff) {
    throw new PgkeepError('INVALID_ARGUMENT', `invalid recovery target timeline "${request}"`, "give 'latest', 'current' or a timeline number");
  }
  return Number(r);
}

function historyError(tli: number, detail: string): PgkeepError {
  return new PgkeepError('WAL_CORRUPT', `timeline history file ${historyFileName(tli)}: ${detail}`, 'check the file in the archive against the one in the server\'s pg_wal');
}
