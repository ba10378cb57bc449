/**
 * Instance use cases: add, delete, configure. The repository's instance.json is written first
 * (it is what `catalog rebuild` reads), then the catalog row.
 */
import type { InstanceRow } from '../catalog/catalog.js';
import { PgkeepError } from '../errors.js';
import { BackupSession } from '../postgres/backup-session.js';
import type { ConnectionSettings } from '../postgres/connection.js';
import { assertDataDirectory } from '../postgres/pgdata-walker.js';
import { removeInstanceConfig, writeInstanceConfig } from '../repository/instance-config.js';
import { instanceKey, validateInstanceName } from '../repository/layout.js';
import { readControlSystemIdentifier } from './backup/read-control.js';
import { instanceCompression, parseCompressAlg, SETTING_KEYS, type SettingKey } from './instance-settings.js';
import { lockInstance } from './instance-locking.js';
import type { RepoContext } from './repo-context.js';

export interface AddInstanceRequest {
  name: string;
  pgdata: string;
  connection: ConnectionSettings;
}

export async function addInstance(ctx: RepoContext, req: AddInstanceRequest): Promise<InstanceRow> {
  validateInstanceName(req.name);
  if (ctx.catalog.getInstance(req.name)) {
    throw new PgkeepError('INSTANCE_EXISTS', `instance ${req.name} already exists`, 'choose another name, or change it with `pgkeep set-config`');
  }
  await assertDataDirectory(req.pgdata);
  const session = await BackupSession.open(req.connection);
  let row: InstanceRow;
  try {
    const id = session.identity;
    const pgdataSysid = await readControlSystemIdentifier(req.pgdata);
    if (pgdataSysid !== id.systemIdentifier) {
      throw new PgkeepError('PGDATA_MISMATCH', `data directory ${req.pgdata} belongs to system ${pgdataSysid}, but the server connected to is system ${id.systemIdentifier}`, '-D must be the data directory of the server reached with -h/-p');
    }
    row = {
      name: req.name,
      pgdata: req.pgdata,
      systemIdentifier: id.systemIdentifier,
      serverVersionNum: id.serverVersionNum,
      blockSize: id.blockSize,
      walSegSize: id.walSegSize,
      connection: compact(req.connection),
      settings: {},
      createdAt: new Date(),
    };
  } finally {
    await session.close();
  }
  await writeInstanceConfig(ctx.store, toConfig(row));
  ctx.catalog.insertInstance(row);
  return row;
}

/** `waitSeconds`: --wait, how long to wait for the instance's lock (undefined: fail at once). */
export async function deleteInstance(ctx: RepoContext, name: string, waitSeconds?: number): Promise<{ backupsRemoved: number }> {
  ctx.catalog.requireInstance(name);
  const lock = await lockInstance(ctx, name, 'del-instance', waitSeconds);
  try {
    const n = ctx.catalog.listBackups(name).length;
    // The catalog row goes first: a crash halfway leaves files that `catalog rebuild` can find again.
    ctx.catalog.deleteInstance(name);
    await removeInstanceConfig(ctx.store, name);
    await ctx.store.removeTree(instanceKey(name));
    return { backupsRemoved: n };
  } finally {
    await lock.release();
  }
}

export interface ConfigChanges {
  pgdata?: string | undefined;
  connection?: ConnectionSettings | undefined;
  settings?: Partial<Record<SettingKey, string>> | undefined;
}

export async function setInstanceConfig(ctx: RepoContext, name: string, changes: ConfigChanges): Promise<InstanceRow> {
  const row = ctx.catalog.requireInstance(name);
  const next: InstanceRow = {
    ...row,
    pgdata: changes.pgdata ?? row.pgdata,
    connection: { ...row.connection, ...compact(changes.connection ?? {}) },
    settings: { ...row.settings },
  };
  for (const key of SETTING_KEYS) {
    const v = changes.settings?.[key];
    if (v !== undefined) next.settings[key] = v;
  }
  if (next.settings['compress-algorithm'] !== undefined) parseCompressAlg(next.settings['compress-algorithm']);
  instanceCompression(next); // refuses a level outside the algorithm's range
  await writeInstanceConfig(ctx.store, toConfig(next));
  ctx.catalog.updateInstance(next);
  return next;
}

export function toConfig(row: InstanceRow) {
  return {
    name: row.name,
    pgdata: row.pgdata,
    systemIdentifier: row.systemIdentifier,
    serverVersionNum: row.serverVersionNum,
    blockSize: row.blockSize,
    walSegSize: row.walSegSize,
    connection: row.connection,
    settings: row.settings,
    createdAt: row.createdAt.toISOString(),
  };
}

function compact(c: ConnectionSettings): InstanceRow['connection'] {
  const out: InstanceRow['connection'] = {};
  if (c.host !== undefined) out.host = c.host;
  if (c.port !== undefined) out.port = c.port;
  if (c.user !== undefined) out.user = c.user;
  if (c.dbname !== undefined) out.dbname = c.dbname;
  return out;
}
