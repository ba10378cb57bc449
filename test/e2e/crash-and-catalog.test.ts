// A backup killed with kill -9 is found RUNNING by the next command, marked ERROR because its
// process is gone, and the next backup works; the catalog is an index that `catalog rebuild`
// recreates from the repository alone; delete removes a backup and its files.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnPgkeep } from '../helpers/cli.js';
import { TestCluster } from '../helpers/cluster.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

describe('crash, catalog rebuild and delete', () => {
  let cluster: TestCluster;
  let fx: RepoFixture;

  beforeAll(async () => {
    cluster = await TestCluster.create({ major: 15, name: 'crash' });
    await cluster.pgbenchInit(10);
    fx = await newRepo(cluster);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('marks a backup killed with -9 ERROR, and the next backup succeeds', async () => {
    const child = spawnPgkeep(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--compress-algorithm', 'gzip', '--compress-level', '9'], { env: { PGKEEP_REPO: fx.repo } });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    // Kill once the backup has started copying (its RUNNING record exists).
    const deadline = Date.now() + 60_000;
    while (!/started at LSN/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stderr).toMatch(/started at LSN/);
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise((r) => child.on('close', r));
    child.kill('SIGKILL');
    await exited;

    const show = await fx.run(['show', '--format', 'json']);
    expect(show.code).toBe(0);
    expect(show.stderr).toMatch(/left RUNNING by process \d+, which is gone: marking it ERROR/);
    const [inst] = JSON.parse(show.stdout) as { backups: { id: string; status: string }[] }[];
    expect(inst!.backups).toHaveLength(1);
    expect(inst!.backups[0]!.status).toBe('ERROR');

    const next = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']);
    const [after] = await fx.showJson();
    expect(after!.backups.find((b) => b.id === backupIdOf(next))!.status).toBe('OK');
    // The server holds no leftover backup slot.
    expect(await cluster.query("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgkeep%'")).toEqual([]);
  });

  it('rebuilds the catalog from the repository to the same show output', async () => {
    await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--note', 'second', '--no-validate']);
    await fx.ok(['set-config', '--instance', 'main', '--compress-algorithm', 'zstd', '--compress-level', '5']);
    const show = (await fx.ok(['show', '--format', 'json'])).stdout;
    const config = (await fx.ok(['show-config', '--instance', 'main', '--format', 'json'])).stdout;
    const statuses = (JSON.parse(show) as { backups: { status: string }[] }[])[0]!.backups.map((b) => b.status);
    expect(statuses).toContain('DONE');

    for (const f of ['catalog.sqlite', 'catalog.sqlite-wal', 'catalog.sqlite-shm']) await rm(join(fx.repo, f), { force: true });
    await fx.ok(['catalog', 'rebuild']);
    expect((await fx.ok(['show', '--format', 'json'])).stdout).toBe(show);
    expect((await fx.ok(['show-config', '--instance', 'main', '--format', 'json'])).stdout).toBe(config);
  });

  it('deletes a backup with its files, and --dry-run deletes nothing', async () => {
    const [inst] = await fx.showJson();
    const victim = inst!.backups[inst!.backups.length - 1]!.id;
    const dir = join(fx.repo, 'instances', 'main', 'backups', victim);
    const dry = await fx.ok(['delete', '--instance', 'main', '-i', victim, '--dry-run']);
    expect(dry.stdout).toContain(`would delete backup ${victim}`);
    expect(existsSync(dir)).toBe(true);
    await fx.ok(['delete', '--instance', 'main', '-i', victim]);
    expect(existsSync(dir)).toBe(false);
    const [after] = await fx.showJson();
    expect(after!.backups.map((b) => b.id)).not.toContain(victim);
    expect(after!.backups).toHaveLength(inst!.backups.length - 1);
  });
});
