/**
 * An instance as the catalog holds it, and its mapping to and from the `instances` table.
 * The repository's instance.json is the source of truth; this row is its index.
 */

/** How to reach the server. No password: libpq's .pgpass and PGPASSWORD handle that. */
export interface InstanceConnection {
  host?: string;
  port?: number;
  user?: string;
  dbname?: string;
}

export interface InstanceRow {
  name: string;
  pgdata: string;
  /** pg_control's system identifier: a uint64, so decimal text. */
  systemIdentifier: string;
  serverVersionNum: number;
  blockSize: number;
  walSegSize: number;
  connection: InstanceConnection;
  settings: Record<string, string>;
  createdAt: Date;
}

/** The table's columns, as better-sqlite3 returns them. */
export interface InstanceColumns {
  name: string;
  pgdata: string;
  system_identifier: string;
  server_version_num: number;
  block_size: number;
  wal_seg_size: number;
  connection_json: string;
  settings_json: string;
  created_at: string;
}

export function instanceToColumns(r: InstanceRow): InstanceColumns {
  return {
    name: r.name,
    pgdata: r.pgdata,
    system_identifier: r.systemIdentifier,
    server_version_num: r.serverVersionNum,
    block_size: r.blockSize,
    wal_seg_size: r.walSegSize,
    connection_json: JSON.stringify(r.connection),
    settings_json: JSON.stringify(r.settings),
    created_at: r.createdAt.toISOString(),
  };
}

export function instanceFromColumns(c: InstanceColumns): InstanceRow {
  return {
    name: c.name,
    pgdata: c.pgdata,
    systemIdentifier: c.system_identifier,
    serverVersionNum: c.server_version_num,
    blockSize: c.block_size,
    walSegSize: c.wal_seg_size,
    connection: JSON.parse(c.connection_json) as InstanceConnection,
    settings: JSON.parse(c.settings_json) as Record<string, string>,
    createdAt: new Date(c.created_at),
  };
}
