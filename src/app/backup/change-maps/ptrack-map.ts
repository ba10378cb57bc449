/**
 * The change map of the ptrack 2.x extension: one bitmap per changed relation segment since the
 * parent's start LSN, provided ptrack has been tracking since before that LSN.
 */
import type { ChangeMap } from '../../../core/change-map.js';
import { formatLsn } from '../../../core/lsn.js';
import { PgkeepError } from '../../../errors.js';
import type { BackupSession } from '../../../postgres/backup-session.js';
import { ptrackInitLsn, ptrackPagemapset, ptrackVersion } from '../../../postgres/ptrack-api.js';
import { parseRelationPath } from '../../../postgres/relation-file.js';
import { SegmentBitmaps } from './segment-bitmaps.js';
import type { ServerChangeMapRequest } from './server-change-map-request.js';

const FALLBACK_HINT = 'take a FULL or DELTA backup (-b FULL or -b DELTA); PTRACK backups can follow it';

export async function ptrackChangeMap(session: BackupSession, schema: string, req: ServerChangeMapRequest): Promise<ChangeMap> {
  const version = await ptrackVersion(session, schema);
  if (!/^2\./.test(version)) {
    throw new PgkeepError('SERVER_UNSUPPORTED', `the ptrack extension in schema ${schema} is version ${version || 'unknown'}; pgkeep speaks the ptrack 2.x API`, 'upgrade ptrack to 2.x (ALTER EXTENSION ptrack UPDATE), or take a DELTA backup (-b DELTA)');
  }
  const parentStart = req.parent.startLsn;
  // ptrack forgets everything when its map is reset (map_size changed, crash without the map):
  // it vouches only for changes since ptrack_init_lsn, and for nothing when that is 0/0.
  const initLsn = await ptrackInitLsn(session, schema);
  if (initLsn === 0n) {
    throw new PgkeepError('PARENT_INVALID', 'ptrack is not tracking changes (ptrack_init_lsn() is 0/0: ptrack.map_size = 0, or ptrack is not in shared_preload_libraries)', `set ptrack.map_size and shared_preload_libraries = 'ptrack', restart, then ${FALLBACK_HINT}`);
  }
  if (initLsn > parentStart) {
    throw new PgkeepError('PARENT_INVALID', `ptrack tracks changes only since LSN ${formatLsn(initLsn)}, after parent backup ${req.parent.id} started (LSN ${formatLsn(parentStart)}): its map cannot vouch for the interval`, FALLBACK_HINT);
  }
  const map = new SegmentBitmaps('ptrack');
  for await (const rows of ptrackPagemapset(session, schema, parentStart)) {
    for (const row of rows) {
      const file = parseRelationPath(row.path);
      if (file === undefined) {
        // A changed file pgkeep cannot place would be missed: refuse rather than back up less.
        throw new PgkeepError('SERVER_ERROR', `ptrack_get_pagemapset reported "${row.path}", which is not a relation file path relative to the data directory`, 'take a DELTA backup (-b DELTA)');
      }
      if (row.pagemap !== null) map.addBitmap(file, row.pagemap);
    }
  }
  return map;
}
