/**
 * PAGE mode: the blocks named by the archived WAL between the parent's start LSN and the new
 * backup's start LSN.
 *
 * Why this range is enough: the parent's copy began after the checkpoint at its start LSN, so it
 * holds every page as of that point or later; every later change to a relation page up to the new
 * start LSN is a WAL record in the range, naming the page in a block reference (or, for changes
 * that are not page writes, see collect-record.ts); changes after the new start LSN are replayed
 * from the new backup's own WAL, as for any backup. Pages a relation grew by are read by the copy
 * whatever the map says.
 *
 * The segment holding the new start LSN is still being written when the backup starts, so WAL
 * is switched on the backup session first; then every segment of the range must be in the
 * archive before reading (a gap fails the backup: see await-archived-segments.ts), and the
 * records must reach the new start LSN (an archived segment cut short fails it too).
 *
 * After a timeline switch between the parent and this backup, the range is read along the
 * server's timeline history, each segment from the timeline recovery would read it from (the one
 * holding a switch point from the new timeline, whose copy starts with the old one's records).
 *
 * Memory: records are streamed segment by segment; the map is per block (block-set.ts).
 */
import type { BackupRecord } from '../../../core/backup-types.js';
import type { ChangeMap } from '../../../core/change-map.js';
import { formatLsn, type Lsn } from '../../../core/lsn.js';
import { segmentFileOnPath, segmentFilesOnPath, type TimelinePath } from '../../../core/timeline-history.js';
import { PgkeepError } from '../../../errors.js';
import type { BackupSession } from '../../../postgres/backup-session.js';
import { majorOf, traitsForMajor } from '../../../postgres/server-versions.js';
import { readWalRecords, type WalReadEnd } from '../../../postgres/wal/wal-reader.js';
import type { RepoContext } from '../../repo-context.js';
import { archiveSegments } from '../../wal/wal-segment-sources.js';
import { awaitArchivedSegments } from '../await-archived-segments.js';
import { collectRecord } from './collect-record.js';
import { WalBlockCollector } from './wal-block-collector.js';

/** XLOG_BLCKSZ: the WAL page size of a default build (the segments' headers are checked against it). */
const WAL_PAGE_SIZE = 8192;

export interface WalChangeMapRequest {
  instance: string;
  parent: BackupRecord;
  startLsn: Lsn;
  /** The history of the server's timeline: after a switch, each segment comes from the timeline recovery would read it from. */
  path: TimelinePath;
  walSegSize: number;
  serverVersionNum: number;
  systemIdentifier: string;
  archiveTimeoutSeconds: number;
  /** The backup session: archive_mode is checked and WAL switched on it. */
  session: Pick<BackupSession, 'query' | 'archivingEnabled'>;
}

export async function walChangeMap(ctx: RepoContext, req: WalChangeMapRequest): Promise<ChangeMap> {
  if (!(await req.session.archivingEnabled())) {
    throw new PgkeepError(
      'ARCHIVE_REQUIRED',
      'a PAGE backup reads the archived WAL since its parent, but archive_mode is off on the server',
      `set archive_mode = on and archive_command = 'pgkeep archive-push -B ${ctx.root} --instance ${req.instance} --wal-file-path %p --wal-file-name %f', then take a FULL backup; or take a DELTA backup (-b DELTA)`,
    );
  }
  // Ends the segment holding the new start LSN, so that archive_command receives it now.
  await req.session.query('SELECT pg_switch_wal()', [], 'switching WAL');

  const from = req.parent.startLsn;
  const to = req.startLsn;
  const names = segmentFilesOnPath(req.path, from, to, req.walSegSize);
  const range = `WAL from the parent ${req.parent.id}'s start ${formatLsn(from)} to ${formatLsn(to)}`;
  const waitStart = Date.now();
  ctx.reporter.info(`PAGE: waiting for ${names.length} segment(s) of ${range} in the archive (up to ${req.archiveTimeoutSeconds} s)`);
  await awaitArchivedSegments({ store: ctx.store, instance: req.instance, names, timeoutSeconds: req.archiveTimeoutSeconds, purpose: `needed to read ${range}`, gapHint: 'the archive has a gap since the parent backup: take a FULL or DELTA backup, which does not need it' });
  ctx.reporter.info(`PAGE: all ${names.length} segment(s) archived (waited ${((Date.now() - waitStart) / 1000).toFixed(1)} s)`);

  const readStart = Date.now();
  const major = majorOf(req.serverVersionNum);
  const traits = traitsForMajor(major);
  const collector = new WalBlockCollector();
  const records = readWalRecords({
    openSegment: archiveSegments(ctx.store, req.instance, req.path, req.walSegSize),
    tli: req.path.tli,
    segmentName: (segNo) => segmentFileOnPath(req.path, segNo, req.walSegSize),
    segSize: req.walSegSize,
    blockSize: WAL_PAGE_SIZE,
    major,
    startLsn: from,
    endLsn: to,
    systemIdentifier: BigInt(req.systemIdentifier),
  });
  let count = 0;
  let end: WalReadEnd;
  for (;;) {
    const next = await records.next();
    if (next.done === true) {
      end = next.value;
      break;
    }
    collectRecord(next.value, traits, collector);
    count++;
  }
  if (end.reason !== 'end-lsn') {
    // Stopping short would leave the changes after `end.lsn` out of the map.
    throw new PgkeepError(
      'WAL_CORRUPT',
      `the archived WAL ends at ${formatLsn(end.lsn)}, before the backup's start ${formatLsn(to)} (${end.detail})`,
      'an archived segment is incomplete or damaged: take a FULL or DELTA backup, which does not need it',
    );
  }

  const c = collector.counts();
  ctx.reporter.info(`PAGE: ${count} WAL records read in ${((Date.now() - readStart) / 1000).toFixed(1)} s, ${c.blockRefs} block references: ${c.blocks} blocks in ${c.files} files, ${c.relationsWhole} relations and ${c.databasesWhole} databases to read whole`);
  const reason = collector.wholeClusterReason;
  if (reason !== undefined) ctx.reporter.warn(`PAGE: every relation file is read whole, as DELTA does: ${reason}`);
  return collector.toChangeMap();
}
