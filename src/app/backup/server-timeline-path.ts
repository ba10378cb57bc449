/**
 * The history of the timeline a server runs on: which timelines, up to which switch points, led
 * to it (core/timeline-history.ts). An incremental backup's parent may lie on any of them. The
 * server keeps every history file in its pg_wal (checkpoints recycle segments, never these); the
 * archive's copy serves when pg_wal has lost it. With neither, only the server's own timeline is
 * known, and only a parent on it is accepted.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { historyFileName, parseTimelineHistory, rootTimelinePath, type TimelinePath } from '../../core/timeline-history.js';
import { errnoCode, fromIoError } from '../../errors.js';
import { loadTimelinePath } from '../wal/archive-contents.js';
import type { RepoContext } from '../repo-context.js';

export async function serverTimelinePath(ctx: RepoContext, instance: string, pgdata: string, tli: number): Promise<TimelinePath> {
  if (tli === 1) return rootTimelinePath(tli);
  const file = join(pgdata, 'pg_wal', historyFileName(tli));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return loadTimelinePath(ctx.store, instance, tli);
    throw fromIoError(e, 'read', file);
  }
  return parseTimelineHistory(tli, text);
}
