/** What a server-side change map is asked for: the blocks changed since `parent` started, up to `startLsn`. */
import type { BackupRecord } from '../../../core/backup-types.js';
import type { Lsn } from '../../../core/lsn.js';
import type { TimelinePath } from '../../../core/timeline-history.js';

export interface ServerChangeMapRequest {
  parent: BackupRecord;
  /** The new backup's start LSN (its checkpoint's redo pointer). */
  startLsn: Lsn;
  /** The history of the server's timeline (the last span): the parent may lie on an older one. */
  path: TimelinePath;
}
