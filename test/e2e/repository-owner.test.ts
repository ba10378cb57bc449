// pgkeep run as root in a repository that belongs to postgres (sudo, a root cron job), while the
// server's archive_command pushes WAL into it as postgres. Everything root makes there (instance
// settings, a backup with its journal and manifest, lock files and directories, a new repository's
// catalog) must belong to postgres afterwards, so that archive-push, validate and delete run as
// postgres keep working. Before, `set-config` as root left an instance.json that archive-push
// could not read ("permission denied"), and the server's WAL piled up.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { runPgkeep } from '../helpers/cli.js';
import { postgresUser } from '../helpers/run-as-postgres.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, connectionArgs, createArchivingInstance, postgresRunner } from './pgkeep-fixture.js';

/** Every path under `dir` (itself included) whose owner is not `uid`, relative to `dir`. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const found: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const path = rel === '' ? dir : join(dir, rel);
    const st = await lstat(path);
    if (st.uid !== uid) found.push(rel === '' ? '.' : rel);
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(rel === '' ? name : `${rel}/${name}`);
  };
  await walk('');
  return found.sort();
}

describe('pgkeep as root in a repository that belongs to postgres', () => {
  let repo: string;
  let source: TestCluster;
  const others: TestCluster[] = [];
  const postgres = postgresRunner(() => repo);
  const asRoot = async (args: string[], dir = repo) => {
    const r = await runPgkeep(args, { env: { PGKEEP_REPO: dir } });
    expect(r.code, `pgkeep ${args.join(' ')} as root:\n${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    repo = await archiveRepoDir('ownedrepo');
    source = await createArchivingInstance(postgres.ok, repo, { major: 15, name: 'owned' });
  });

  afterAll(async () => {
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  it('gives postgres what root creates there, and postgres goes on archiving, validating and deleting', async () => {
    const { uid } = postgresUser();
    expect(uid).not.toBe(0);
    await asRoot(['set-config', '--instance', 'main', '--compress-algorithm', 'zstd']);
    const full = backupIdOf(await asRoot(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));
    await source.query('CREATE TABLE after_full AS SELECT g FROM generate_series(1, 10000) g');
    const delta = backupIdOf(await asRoot(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2']));
    await asRoot(['validate', '--instance', 'main', '-i', delta]);
    const dest = join(await makeTempDir('owned-restore', { owner: 'postgres' }), 'data');
    await asRoot(['restore', '--instance', 'main', '-i', delta, '-D', dest, '--archive-mode', 'off']);
    expect(await notOwnedBy(repo, uid)).toEqual([]);

    // postgres carries on: the server archives (archive-push reads instance.json, writes wal/),
    // and validate and delete work on what root made.
    const segment = await postgres.switchWal(source);
    expect(await postgres.archived()).toContain(segment);
    const v = await postgres.ok(['validate', '--instance', 'main']);
    expect(v.stdout).toContain(`backup ${full} is valid`);
    expect(v.stdout).toContain(`backup ${delta} is valid`);
    await postgres.ok(['delete', '--instance', 'main', '-i', delta]);
    const left = (JSON.parse((await postgres.ok(['show', '--format', 'json'])).stdout) as { backups: { id: string }[] }[])[0]!.backups.map((b) => b.id);
    expect(left).toEqual([full]);

    const restored = await TestCluster.adopt(dest, { major: 15, name: 'owned-restored' });
    others.push(restored);
    expect(Number((await restored.query<{ n: string }>('SELECT count(*) AS n FROM after_full'))[0]!.n)).toBe(10000);
    await restored.stop();
  });

  // A restore target this user cannot write is refused before anything is written: it used to
  // fail at its first mkdir, with a hint to remove a part-written directory that did not exist.
  it('refuses a restore by postgres into directories it cannot write, writing nothing', async () => {
    const full = backupIdOf(await postgres.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    const rootDir = await makeTempDir('root-owned'); // root's, mode 0755
    const ownDir = await makeTempDir('pg-owned', { owner: 'postgres' });
    const refused = async (args: string[]): Promise<string[]> => {
      const r = await postgres.pgkeep(['restore', '--instance', 'main', '-i', full, ...args]);
      expect(r.code, r.stdout + r.stderr).not.toBe(0);
      return r.stderr.split('\n').filter((l) => l.startsWith('ERROR: ') || l.startsWith('HINT: '));
    };
    const hint = 'HINT: run pgkeep as a user that can write there, or fix the directory permissions';
    // A new directory in root's, an empty one of root's, and --waldir in root's with DEST of postgres's.
    expect(await refused(['-D', join(rootDir, 'new', 'data')])).toEqual([`ERROR: permission denied while trying to create ${join(rootDir, 'new', 'data')}`, hint]);
    expect(await refused(['-D', rootDir])).toEqual([`ERROR: permission denied while trying to create ${rootDir}`, hint]);
    expect(await refused(['-D', join(ownDir, 'data'), '-X', join(rootDir, 'wal')])).toEqual([`ERROR: permission denied while trying to create ${join(rootDir, 'wal')}`, hint]);
    expect(await readdir(rootDir)).toEqual([]);
    expect(await readdir(ownDir)).toEqual([]);
  });

  it('gives postgres a repository root initialises in an empty directory of postgres', async () => {
    const { uid } = postgresUser();
    const empty = await makeTempDir('owned-init', { owner: 'postgres' });
    await asRoot(['init'], empty);
    await asRoot(['add-instance', '--instance', 'other', '-D', source.pgdata, ...connectionArgs(source)], empty);
    expect(await notOwnedBy(empty, uid)).toEqual([]);
    const r = await postgres.pgkeep(['show', '--format', 'json'], empty);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { instance: string }[]).map((i) => i.instance)).toEqual(['other']);
  });
});
