/**
 * PAGE mode: the blocks named by the archived WAL between the parent's start LSN and the new
 * backup's start LSN. (Being implemented: see issue 4.)
 */
import type { BackupRecord } from '../../../core/backup-types.js';
import type { ChangeMap } from '../../../core/change-map.js';
import type { Lsn } from '../../../core/lsn.js';
import { PgkeepError } from '../../../errors.js';
import type { RepoContext } from '../../repo-context.js';

export interface WalChangeMapRequest {
  instance: string;
  parent: BackupRecord;
  startLsn: Lsn;
  timeline: number;
  walSegSize: number;
  serverVersionNum: number;
  systemIdentifier: string;
  archiveTimeoutSeconds: number;
}

export async function walChangeMap(_ctx: RepoContext, _req: WalChangeMapRequest): Promise<ChangeMap> {
  throw new PgkeepError('INVALID_ARGUMENT', 'backup mode PAGE is not available yet', 'take a DELTA backup (-b DELTA)');
}
