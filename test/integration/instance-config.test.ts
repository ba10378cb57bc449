import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  listInstanceConfigs,
  listInstanceNames,
  readInstanceConfig,
  removeInstanceConfig,
  writeInstanceConfig,
  type InstanceConfig,
} from '../../src/repository/instance-config.js';
import { PosixStore } from '../../src/storage/posix-store.js';

const config: InstanceConfig = {
  name: 'main',
  pgdata: '/var/lib/postgresql/17/main',
  systemIdentifier: '7301234567890123456',
  serverVersionNum: 170002,
  blockSize: 8192,
  walSegSize: 16777216,
  connection: { host: '/tmp', port: 5432, user: 'postgres', dbname: 'postgres' },
  settings: { 'retention-redundancy': '2' },
  createdAt: '2026-11-21T12:00:00.000Z',
};

describe('instance.json', () => {
  let dir: string;
  let store: PosixStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-instance-'));
    store = new PosixStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips, lists and removes', async () => {
    await writeInstanceConfig(store, config);
    await writeInstanceConfig(store, { ...config, name: 'alpha', connection: {} });
    expect(await readInstanceConfig(store, 'main')).toEqual(config);
    expect(await listInstanceNames(store)).toEqual(['alpha', 'main']);
    expect((await listInstanceConfigs(store)).map((c) => c.name)).toEqual(['alpha', 'main']);
    await removeInstanceConfig(store, 'alpha');
    expect(await listInstanceNames(store)).toEqual(['main']);
    await expect(readInstanceConfig(store, 'alpha')).rejects.toMatchObject({ code: 'INSTANCE_NOT_FOUND' });
  });

  it('never stores a password', async () => {
    const withSecret = {
      ...config,
      connection: { ...config.connection, password: 'hunter2' } as InstanceConfig['connection'],
      settings: { ...config.settings, 'repo-password': 'hunter2' },
    };
    await writeInstanceConfig(store, withSecret);
    const text = await readFile(join(dir, 'instances/main/instance.json'), 'utf8');
    expect(text).not.toContain('hunter2');
    expect(await readInstanceConfig(store, 'main')).toEqual(config);
  });

  it('refuses an invalid instance name', async () => {
    await expect(writeInstanceConfig(store, { ...config, name: '../evil' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
