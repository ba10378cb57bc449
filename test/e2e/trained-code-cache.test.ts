// Backups that start from the code cache an earlier backup of their mode trained
// (src/cli/trained-code-cache.ts): the first FULL and PTRACK backups compile from the build's
// cache and save their own; the next PTRACK backup runs from that cache, copies, validates, and
// restores to a server that starts with the source's rows. Byte for byte the same program, only
// compiled sooner: what would go wrong with a cache that did not fit the bundle shows here.
import { statSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { tableDigest } from '../helpers/sql-checks.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

describe('backups from a trained code cache', () => {
  let source: TestCluster;
  let restored: TestCluster | undefined;
  let fx: RepoFixture;
  let cacheDir: string;

  beforeAll(async () => {
    source = await TestCluster.create({ major: 17, name: 'trained-cache', settings: { summarize_wal: 'on' } });
    await source.pgbenchInit(2);
    fx = await newRepo(source);
    cacheDir = await makeTempDir('code-cache');
    await chmod(cacheDir, 0o700);
  });

  afterAll(async () => {
    await restored?.destroy();
    await source?.destroy();
  });

  const backup = (mode: string) =>
    fx.ok(['backup', '--instance', 'main', '-b', mode, '--stream', '-j', '2'], { env: { PGKEEP_CODE_CACHE_DIR: cacheDir, PGKEEP_DEBUG: '1' } });
  const change = async (from: number) => {
    await source.query(`UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid BETWEEN ${from} AND ${from + 3000}`);
    await source.query('CHECKPOINT');
  };

  it('saves one per mode after the first backup of it, and the next backup of the mode runs from it to a restorable backup', async () => {
    const full = await backup('FULL');
    expect(full.stderr).toContain('code cache of the backup bundle: build');
    expect(full.stderr).toMatch(new RegExp(`trained code cache saved: ${cacheDir}/backup-[0-9a-f]{32}-v[0-9.]+-FULL\\.v8cache`));

    await change(1);
    const first = await backup('PTRACK');
    expect(first.stderr).toContain('code cache of the backup bundle: build');
    const saved = /trained code cache saved: (\S+PTRACK\.v8cache)/.exec(first.stderr)?.[1];
    expect(saved).toBeDefined();
    const trainedAt = statSync(saved!).mtimeMs;

    await change(100_001);
    const second = await backup('PTRACK');
    expect(second.stderr).toContain('code cache of the backup bundle: trained');
    expect(second.stderr).not.toContain('trained code cache saved');
    expect(statSync(saved!).mtimeMs).toBe(trainedAt);
    const id = backupIdOf(second);
    const b = (await fx.showJson())[0]!.backups.find((x) => x.id === id)!;
    expect(b.status).toBe('OK'); // validated after the copy, in the same process
    expect(b.backup_mode).toBe('PTRACK');
    expect(b.change_source).toBe('wal-summary');

    const expected = await tableDigest((sql, params, db) => source.query(sql, params, db), 'postgres');
    const dest = join(await makeTempDir('restore'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2']);
    restored = await TestCluster.adopt(dest, { major: 17, name: 'trained-cache-restored' });
    expect(await tableDigest((sql, params, db) => restored!.query(sql, params, db), 'postgres')).toEqual(expected);
  });
});
