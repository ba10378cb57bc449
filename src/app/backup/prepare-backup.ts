/**
 * Phase 1 of a backup (take-backup.ts): make sure that the instance, its data directory and the
 * server reached are one cluster, and, for an incremental backup, choose the parent on the
 * server's timeline history and load its manifest. Nothing is written yet: a refusal here leaves
 * the repository and the catalog as they were.
 */
import type { BackupMode, BackupRecord } from '../../core/backup-types.js';
import { toFileMap } from '../../core/file-plan.js';
import type { TimelinePath } from '../../core/timeline-history.js';
import { PgkeepError } from '../../errors.js';
import type { InstanceRow } from '../../catalog/instance-row.js';
import type { BackupSession } from '../../postgres/backup-session.js';
import { readPgdataOwner, type PgdataOwner } from '../../postgres/pgdata-walker.js';
import { readManifest, type Manifest } from '../../repository/manifest.js';
import { listArchivedWal } from '../../repository/wal-archive.js';
import type { RepoContext } from '../repo-context.js';
import { assertParentFits, chooseParent, likelyParent } from './choose-parent.js';
import type { IncrementalBase } from './copy-sources.js';
import { readControlSystemIdentifier } from './read-control.js';
import { serverTimelinePath } from './server-timeline-path.js';

/** The parent an incremental backup will most likely get, and its manifest, read while the server is reached. */
export interface ParentGuess {
  parent: BackupRecord;
  manifest: Promise<Manifest>;
}

export interface PreparedBackup {
  /** Owner of the data directory: the backup's files are stored as it, for a restore as root. */
  owner: PgdataOwner;
  /** Incremental modes: the parent, and its files the copy compares against. */
  parent?: BackupRecord | undefined;
  base?: IncrementalBase | undefined;
  /** Incremental modes: the server's timeline history, on which the parent and the WAL lie. */
  history?: TimelinePath | undefined;
}

/**
 * Starts reading the manifest of the likely parent (the parent is chosen once the server's
 * timeline is known; a wrong guess is read again in prepareBackup). Undefined for a FULL backup.
 */
export function guessParent(ctx: RepoContext, instance: string, mode: BackupMode, parentId: string | undefined): ParentGuess | undefined {
  const parent = mode === 'FULL' ? undefined : likelyParent(ctx, instance, parentId);
  if (!parent) return undefined;
  const manifest = readManifest(ctx.store, parent.instance, parent.id, parent.generation);
  manifest.catch(() => undefined); // awaited only if the guess was right
  return { parent, manifest };
}

export async function prepareBackup(
  ctx: RepoContext,
  req: { mode: BackupMode; stream: boolean; parentId?: string | undefined },
  instance: InstanceRow,
  session: BackupSession,
  guess: ParentGuess | undefined,
): Promise<PreparedBackup> {
  const id = session.identity;
  if (id.systemIdentifier !== instance.systemIdentifier) {
    throw new PgkeepError('SYSTEM_ID_MISMATCH', `the server reached is system ${id.systemIdentifier}, but instance ${instance.name} is system ${instance.systemIdentifier}`, 'connect to the instance\'s own server (-h/-p), or add the other cluster as a new instance');
  }
  const pgdataSysid = await readControlSystemIdentifier(instance.pgdata);
  if (pgdataSysid !== id.systemIdentifier) {
    throw new PgkeepError('PGDATA_MISMATCH', `data directory ${instance.pgdata} belongs to system ${pgdataSysid}, not to the server connected to (system ${id.systemIdentifier})`, 'set the instance\'s -D to the data directory of the server it connects to');
  }
  if (!req.stream) await assertArchiveFed(ctx, instance.name, session);
  // A standby backs up like its primary (pg_control last, WAL from its own pg_wal under the
  // slot), but cannot switch WAL, which PAGE needs to have its start segment archived.
  if (id.inRecovery && req.mode === 'PAGE') {
    throw new PgkeepError('SERVER_UNSUPPORTED', 'a PAGE backup switches WAL on the server, and a standby cannot', 'take a PTRACK or DELTA backup of the standby, or a PAGE backup of the primary');
  }
  const owner = await readPgdataOwner(instance.pgdata);
  if (req.mode === 'FULL') return { owner };

  // The server's timeline history: after a failover the parent may lie on an older timeline.
  const history = await serverTimelinePath(ctx, instance.name, instance.pgdata, id.timeline);
  const parent = chooseParent(ctx, instance.name, req.parentId, history);
  assertParentFits(parent, { systemIdentifier: id.systemIdentifier, path: history, currentLsn: await session.currentLsn() });
  const guessed = guess && guess.parent.id === parent.id && guess.parent.generation === parent.generation;
  const manifest = await (guessed ? guess.manifest : readManifest(ctx.store, parent.instance, parent.id, parent.generation));
  return { owner, history, parent, base: { files: toFileMap(manifest.files), sinceLsn: parent.startLsn } };
}

/**
 * Without --stream, the backup's WAL must reach the archive: archived by the server itself, or,
 * from a standby that does not archive (archive_mode off, as a primary's settings copied over
 * may not say), by its primary, which the instance's archive holding WAL already shows.
 */
async function assertArchiveFed(ctx: RepoContext, instance: string, session: BackupSession): Promise<void> {
  if (await session.archivingEnabled()) return;
  const archiveCommand = `archive_command = 'pgkeep archive-push -B ${ctx.root} --instance ${instance} --wal-file-path %p --wal-file-name %f'`;
  if (!session.identity.inRecovery) {
    throw new PgkeepError('ARCHIVE_REQUIRED', 'a backup without --stream needs the WAL archive, but archive_mode is off on the server', `set archive_mode = on and ${archiveCommand}, or add --stream`);
  }
  if ((await listArchivedWal(ctx.store, instance)).length > 0) return;
  throw new PgkeepError('ARCHIVE_REQUIRED', `a backup of a standby without --stream needs the WAL archive, but the standby does not archive (archive_mode is off) and instance ${instance}'s archive holds no WAL`, `have the primary archive into it (archive_mode = on, ${archiveCommand}), or add --stream`);
}

/** While the backup waited for the lock, a merge or delete may have changed or removed its parent. */
export function assertParentUnchanged(ctx: RepoContext, parent: BackupRecord | undefined): void {
  if (parent && ctx.catalog.getBackup(parent.instance, parent.id)?.generation !== parent.generation) {
    throw new PgkeepError('PARENT_INVALID', `parent backup ${parent.id} was merged or deleted while this backup waited for the lock`, 'run the backup again');
  }
}
