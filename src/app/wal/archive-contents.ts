/**
 * What an instance's WAL archive holds, read once per command: the segment numbers per timeline
 * (from the listing, no file is opened) and the parsed timeline history files (a few lines each).
 */
import { parseWalFileName } from '../../core/lsn.js';
import { historyFileName, parseTimelineHistory, rootTimelinePath, type TimelinePath } from '../../core/timeline-history.js';
import { PgkeepError } from '../../errors.js';
import { listArchivedWal, readArchivedWal, statArchivedWal } from '../../repository/wal-archive.js';
import type { ByteStore } from '../../storage/byte-store.js';

export interface ArchiveContents {
  /** Every archived name (segments, .history, .partial, .backup). */
  names: ReadonlySet<string>;
  /** Segment numbers per timeline, ascending. */
  segments: ReadonlyMap<number, bigint[]>;
  /** The path of each timeline that has a history file. */
  histories: ReadonlyMap<number, TimelinePath>;
}

const SEGMENT = /^[0-9A-F]{24}$/;
const HISTORY = /^([0-9A-F]{8})\.history$/;

export async function loadArchiveContents(store: ByteStore, instance: string, segSize: number): Promise<ArchiveContents> {
  const names = await listArchivedWal(store, instance);
  const segments = new Map<number, bigint[]>();
  const histories = new Map<number, TimelinePath>();
  for (const name of names) {
    if (SEGMENT.test(name)) {
      const { tli, segNo } = parseWalFileName(name, segSize);
      let list = segments.get(tli);
      if (!list) segments.set(tli, (list = []));
      list.push(segNo);
    }
    const h = HISTORY.exec(name);
    if (h) {
      const tli = Number.parseInt(h[1]!, 16);
      histories.set(tli, parseTimelineHistory(tli, await readArchivedText(store, instance, name)));
    }
  }
  for (const list of segments.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { names: new Set(names), segments, histories };
}

/** The path to `tli` as its history file in the archive tells it (timeline 1, or no file: the timeline alone). */
export async function loadTimelinePath(store: ByteStore, instance: string, tli: number): Promise<TimelinePath> {
  const name = historyFileName(tli);
  if (tli === 1 || !(await statArchivedWal(store, instance, name))) return rootTimelinePath(tli);
  return parseTimelineHistory(tli, await readArchivedText(store, instance, name));
}

async function readArchivedText(store: ByteStore, instance: string, name: string): Promise<string> {
  const info = await statArchivedWal(store, instance, name);
  if (!info) throw new PgkeepError('WAL_MISSING', `${name} vanished from the archive while it was read`, 'run the command again');
  const parts: Buffer[] = [];
  // History files are a few lines: read whole.
  for await (const chunk of readArchivedWal(store, instance, info)) parts.push(chunk);
  return Buffer.concat(parts).toString('utf8');
}
