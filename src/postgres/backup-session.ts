/**
 * One PostgreSQL session that drives a non-exclusive online backup.
 *
 * The non-exclusive API ties the backup to the session: if the connection drops, the server
 * aborts the backup. So a single client is opened, used for start and stop, and kept until the
 * WAL needed by the backup has been copied; a temporary physical replication slot created on the
 * same session holds that WAL in pg_wal until then, and disappears with the session.
 */
import type pg from 'pg';
import { parseLsn, type Lsn } from '../core/lsn.js';
import { errorMessage, PgkeepError } from '../errors.js';
import { openClient, serverError, type ConnectionSettings } from './connection.js';
import { traitsFor, type MajorTraits } from './server-versions.js';

export interface ServerIdentity {
  systemIdentifier: string;
  serverVersion: string;
  serverVersionNum: number;
  blockSize: number;
  walSegSize: number;
  checksumsEnabled: boolean;
  dataDirectory: string | null;
  inRecovery: boolean;
  timeline: number;
}

export interface BackupStopResult {
  stopLsn: Lsn;
  labelFile: string;
  tablespaceMap: string;
}

export class BackupSession {
  private backupStarted = false;
  /**
   * Why the server closed the session between queries (pg_terminate_backend, a restart): pg
   * emits it as an 'error' event, which would end the process with a raw stack if nobody
   * listened. It is kept, and every later query fails with it as SERVER_UNREACHABLE.
   */
  private lost: unknown;

  private constructor(
    private readonly client: pg.Client,
    readonly identity: ServerIdentity,
    readonly traits: MajorTraits,
  ) {}

  static async open(settings: ConnectionSettings): Promise<BackupSession> {
    const client = await openClient(settings, 'pgkeep backup');
    let lost: unknown;
    const onLost = (e: unknown) => (lost ??= e);
    client.on('error', onLost);
    try {
      const identity = await readIdentity(client);
      const session = new BackupSession(client, identity, traitsFor(identity.serverVersionNum));
      client.off('error', onLost);
      session.lost = lost;
      client.on('error', (e: unknown) => (session.lost ??= e));
      return session;
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
  }

  /** The server's current WAL position (used to refuse increments against the future): on a standby, how far it has replayed. */
  async currentLsn(): Promise<Lsn> {
    const r = await this.query<{ lsn: string }>('SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn', [], 'reading the current WAL position');
    return parseLsn(r[0]!.lsn);
  }

  /** archive_mode is on (or always): archived WAL can serve a backup without --stream. */
  async archivingEnabled(): Promise<boolean> {
    const r = await this.query<{ mode: string }>("SELECT current_setting('archive_mode') AS mode", [], 'reading archive_mode');
    return r[0]!.mode !== 'off';
  }

  /**
   * Temporary physical slot reserving WAL from now on; created before the backup starts so that
   * every segment from the start checkpoint onwards stays in pg_wal until the session ends.
   */
  async reserveWal(slotName: string): Promise<void> {
    await this.query('SELECT pg_create_physical_replication_slot($1, true, true)', [slotName], 'creating a temporary replication slot to hold WAL (needs max_replication_slots > 0)');
  }

  async startBackup(label: string, fastCheckpoint: boolean): Promise<Lsn> {
    const r = await this.query<{ lsn: string }>(this.traits.backupStartSql, [label, fastCheckpoint], 'starting the backup');
    this.backupStarted = true;
    return parseLsn(r[0]!.lsn);
  }

  async stopBackup(): Promise<BackupStopResult> {
    if (!this.backupStarted) throw new PgkeepError('INTERNAL', 'stopBackup called before startBackup');
    const r = await this.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(this.traits.backupStopSql, [], 'stopping the backup');
    this.backupStarted = false;
    const row = r[0]!;
    return { stopLsn: parseLsn(row.lsn), labelFile: row.labelfile, tablespaceMap: row.spcmapfile ?? '' };
  }

  /** Ends the session. A backup still in progress is aborted by the server when the session ends. */
  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  /** Runs a query on the backup session; errors become PgkeepErrors saying what was being done. */
  async query<T>(sql: string, params: unknown[], doing: string): Promise<T[]> {
    if (this.lost !== undefined) throw connectionLost(this.lost, doing);
    try {
      const r = await this.client.query(sql, params);
      return r.rows as T[];
    } catch (e) {
      throw this.lost !== undefined ? connectionLost(this.lost, doing) : serverError(e, doing);
    }
  }
}

/** The session was closed by the server (terminated, restarted, crashed) before `doing`. */
function connectionLost(cause: unknown, doing: string): PgkeepError {
  const msg = errorMessage(cause);
  return new PgkeepError('SERVER_UNREACHABLE', `the server closed the backup's connection before ${doing} (${msg}); the backup was aborted`, 'the server closed the connection: check its log; take the backup again', { cause });
}

/**
 * The timeline the server writes WAL on. pg_control's checkpoint says it only after the first
 * checkpoint on it: a server just promoted (PostgreSQL ends recovery without one) still reports
 * the old timeline there, and would have an incremental backup choose its parent on a timeline
 * it has left. The name of the WAL file being written carries the current one; a standby has
 * none, and its checkpoint's is the best there is.
 */
const CURRENT_TIMELINE_SQL = `CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())::bigint
                  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END`;

async function readIdentity(client: pg.Client): Promise<ServerIdentity> {
  try {
    const r = await client.query(`
      SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
             current_setting('server_version') AS version,
             current_setting('server_version_num')::int AS version_num,
             current_setting('block_size')::int AS block_size,
             (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') AS wal_seg_size,
             current_setting('data_checksums') = 'on' AS checksums,
             current_setting('data_directory', true) AS data_directory,
             pg_is_in_recovery() AS in_recovery,
             ${CURRENT_TIMELINE_SQL} AS timeline`);
    const row = r.rows[0] as Record<string, unknown>;
    return {
      systemIdentifier: String(row.sysid),
      serverVersion: String(row.version).split(' ')[0]!,
      serverVersionNum: Number(row.version_num),
      blockSize: Number(row.block_size),
      walSegSize: Number(row.wal_seg_size),
      checksumsEnabled: Boolean(row.checksums),
      dataDirectory: row.data_directory ? String(row.data_directory) : null,
      inRecovery: Boolean(row.in_recovery),
      timeline: Number(row.timeline),
    };
  } catch (e) {
    throw serverError(e, 'reading the server identity (pg_control_system needs superuser or pg_monitor)');
  }
}

/** Reads `START TIMELINE: n` from a backup label. */
export function timelineFromLabel(label: string): number | undefined {
  const m = /^START TIMELINE: (\d+)$/m.exec(label);
  return m ? Number(m[1]) : undefined;
}
