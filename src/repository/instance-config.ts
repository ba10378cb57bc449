/**
 * instance.json: an instance's settings, kept in the repository so that the catalog's instance
 * rows can be rebuilt from the repository alone (`pgkeep catalog rebuild`). Passwords are never
 * written: only the four connection fields below are kept, whatever the caller passes.
 */
import { PgkeepError } from '../errors.js';
import { isMissingObjectError, type ByteStore } from '../storage/byte-store.js';
import { checkFormatVersion, FILE_FORMAT_VERSION } from './format-version.js';
import { corruptFile, JsonFields, parseJsonObject } from './json-fields.js';
import { instanceConfigKey, instancesKey, validateInstanceName } from './layout.js';

export interface InstanceConnection {
  host?: string;
  port?: number;
  user?: string;
  dbname?: string;
}

export interface InstanceConfig {
  name: string;
  pgdata: string;
  systemIdentifier: string;
  serverVersionNum: number;
  blockSize: number;
  walSegSize: number;
  connection: InstanceConnection;
  settings: Record<string, string>;
  /** When the instance was added (ISO 8601), so that a rebuilt catalog keeps it. */
  createdAt: string;
}

/** Write (or replace) an instance's config durably. */
export async function writeInstanceConfig(store: ByteStore, config: InstanceConfig): Promise<void> {
  validateInstanceName(config.name);
  const body = {
    formatVersion: FILE_FORMAT_VERSION,
    name: config.name,
    pgdata: config.pgdata,
    systemIdentifier: config.systemIdentifier,
    serverVersionNum: config.serverVersionNum,
    blockSize: config.blockSize,
    walSegSize: config.walSegSize,
    connection: safeConnection(config.connection),
    settings: safeSettings(config.settings),
    createdAt: config.createdAt,
  };
  await store.writeAtomic(instanceConfigKey(config.name), `${JSON.stringify(body, null, 2)}\n`);
}

/** INSTANCE_NOT_FOUND when the instance has no instance.json; MANIFEST_CORRUPT when unreadable. */
export async function readInstanceConfig(store: ByteStore, name: string): Promise<InstanceConfig> {
  const key = instanceConfigKey(name);
  let bytes: Buffer;
  try {
    bytes = await store.read(key);
  } catch (e) {
    if (isMissingObjectError(e)) {
      throw new PgkeepError('INSTANCE_NOT_FOUND', `instance ${name} not found in the repository`, 'add it with `pgkeep add-instance`, or list instances with `pgkeep show`');
    }
    throw e;
  }
  const obj = parseJsonObject(bytes.toString('utf8'), key);
  checkFormatVersion(obj, key);
  const f = new JsonFields(obj, key);
  const c = f.object('connection');
  const connection: InstanceConnection = {};
  const host = c.optionalString('host');
  const user = c.optionalString('user');
  const dbname = c.optionalString('dbname');
  const port = c.optionalCount('port');
  if (host !== undefined) connection.host = host;
  if (port !== undefined) connection.port = port;
  if (user !== undefined) connection.user = user;
  if (dbname !== undefined) connection.dbname = dbname;
  const config: InstanceConfig = {
    name: f.string('name'),
    pgdata: f.string('pgdata'),
    systemIdentifier: f.string('systemIdentifier'),
    serverVersionNum: f.count('serverVersionNum'),
    blockSize: f.count('blockSize'),
    walSegSize: f.count('walSegSize'),
    connection,
    settings: f.stringRecord('settings'),
    createdAt: f.string('createdAt'),
  };
  if (config.name !== name) throw corruptFile(key, `it names instance ${config.name}`);
  return config;
}

/** Names of the instances that have an instance.json, sorted. */
export async function listInstanceNames(store: ByteStore): Promise<string[]> {
  const names: string[] = [];
  for (const name of await store.list(instancesKey())) {
    if (!isInstanceName(name)) continue;
    if (await store.exists(instanceConfigKey(name))) names.push(name);
  }
  return names;
}

/** Every instance's config, sorted by name. */
export async function listInstanceConfigs(store: ByteStore): Promise<InstanceConfig[]> {
  const configs: InstanceConfig[] = [];
  for (const name of await listInstanceNames(store)) configs.push(await readInstanceConfig(store, name));
  return configs;
}

/**
 * Remove an instance's instance.json only; its backups and WAL are the caller's to delete first
 * (removing the config last means an interrupted removal still shows the instance).
 */
export async function removeInstanceConfig(store: ByteStore, name: string): Promise<void> {
  await store.remove(instanceConfigKey(name));
}

function safeConnection(c: InstanceConnection): InstanceConnection {
  const out: InstanceConnection = {};
  if (c.host !== undefined) out.host = c.host;
  if (c.port !== undefined) out.port = c.port;
  if (c.user !== undefined) out.user = c.user;
  if (c.dbname !== undefined) out.dbname = c.dbname;
  return out;
}

/** Settings are free-form; anything that looks like a secret is dropped. */
function safeSettings(settings: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).filter(([k]) => !/password|passwd|secret/i.test(k)));
}

function isInstanceName(name: string): boolean {
  try {
    validateInstanceName(name);
    return true;
  } catch {
    return false;
  }
}
