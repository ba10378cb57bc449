/**
 * PTRACK mode: the server's own change map, from the ptrack extension or PostgreSQL 17+ WAL
 * summaries. (Being implemented: see issue 5.)
 */
import type { BackupRecord } from '../../../core/backup-types.js';
import type { ChangeMap } from '../../../core/change-map.js';
import type { Lsn } from '../../../core/lsn.js';
import { PgkeepError } from '../../../errors.js';
import type { BackupSession } from '../../../postgres/backup-session.js';

export interface ServerChangeMapRequest {
  parent: BackupRecord;
  startLsn: Lsn;
  timeline: number;
}

export async function serverChangeMap(_session: BackupSession, _req: ServerChangeMapRequest): Promise<ChangeMap> {
  throw new PgkeepError('INVALID_ARGUMENT', 'backup mode PTRACK is not available yet', 'take a DELTA backup (-b DELTA)');
}
