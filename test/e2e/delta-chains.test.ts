// DELTA backup chains on every major under test: a chain of ten increments over a pgbench
// database with assorted changes between them (pgbench, updates and inserts, a new table, a
// dropped table, TRUNCATE, VACUUM FULL); the 1st, 2nd and 10th increments restore to exactly the
// tables recorded when each was taken; show reports the chain (json parents, restore_chain, the
// plain tree); merge folds the 10th into a FULL backup and removes its ancestors, and the merged
// backup is a valid parent for a new increment; delete takes a backup's descendants with it;
// DELTA is refused without a usable parent.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type PgMajor } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture, type ShowBackup } from './pgkeep-fixture.js';
import { MAX_TREE_INDENT } from '../../src/app/show/backup-tree.js';

const MAJORS: PgMajor[] = [15, 17];

type Digest = Record<string, string>;

describe.each(MAJORS)('DELTA chains on PostgreSQL %i', (major) => {
  let source: TestCluster;
  let fx: RepoFixture;
  let full: string;
  /** deltas[k] is the (k+1)-th DELTA of the chain; digests[id] the source's tables at its backup. */
  const deltas: string[] = [];
  const digests = new Map<string, Digest>();

  beforeAll(async () => {
    source = await TestCluster.create({ major, name: `delta${major}` });
    await source.pgbenchInit(2);
    await source.query('CREATE TABLE t (id serial PRIMARY KEY, v text, n int)');
    await source.query("INSERT INTO t (v, n) SELECT md5(g::text), g FROM generate_series(1, 5000) g");
    fx = await newRepo(source);
  });

  afterAll(async () => {
    await source?.destroy();
  });

  const backupDir = (id: string) => join(fx.repo, 'instances', 'main', 'backups', id);

  async function pgbenchFor(ms: number): Promise<void> {
    const bench = source.startPgbench({ clients: 2 });
    await new Promise((r) => setTimeout(r, ms));
    await bench.stop();
  }

  /** Takes a backup with no concurrent writes, recording the source's tables first. */
  async function backup(mode: 'FULL' | 'DELTA', extra: string[] = []): Promise<string> {
    const digest = await source.tableDigest();
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', mode, '--stream', '-j', '2', ...extra]));
    digests.set(id, digest);
    return id;
  }

  /** Restores `id`, starts it, and checks tables, pgbench's invariant and amcheck. */
  async function restoreAndCheck(id: string): Promise<void> {
    const dest = join(await makeTempDir('restore'), 'data');
    const r = await fx.ok(['restore', '--instance', 'main', '-D', dest, '-i', id, '-j', '2']);
    expect(r.stdout).toContain(`backup ${id} restored`);
    const c = await TestCluster.adopt(dest, { major, name: `r${major}-${id.slice(-4)}` });
    try {
      expect(await c.tableDigest(), `tables of the restore of ${id}`).toEqual(digests.get(id));
      const inv = await c.pgbenchInvariant();
      expect(inv.ok, `pgbench invariant after restoring ${id}`).toBe(true);
      await c.amcheck();
    } finally {
      await c.destroy();
    }
  }

  async function backupsById(): Promise<Map<string, ShowBackup>> {
    const [inst] = await fx.showJson();
    return new Map(inst!.backups.map((b) => [b.id, b]));
  }

  // Changes made before each DELTA: every one leaves the tables different from the previous
  // backup, so a restore that stopped one link short of its target shows in the digest.
  const changes: (() => Promise<void>)[] = [
    () => pgbenchFor(1000),
    async () => {
      await source.query("UPDATE t SET v = 'u2-' || v WHERE id % 7 = 0");
      await source.query("INSERT INTO t (v, n) SELECT 'ins2-' || g, g FROM generate_series(1, 3000) g");
    },
    async () => {
      await source.query("CREATE TABLE added AS SELECT g AS id, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 20000) g");
      await pgbenchFor(700);
    },
    async () => {
      await source.query("CREATE TABLE doomed AS SELECT g AS id FROM generate_series(1, 10000) g");
      await source.query('DELETE FROM t WHERE id % 5 = 1');
    },
    async () => {
      await source.query('DROP TABLE doomed');
      await source.query("UPDATE added SET pad = 'x' WHERE id % 3 = 0");
    },
    async () => {
      // The table shrinks to nothing and grows again (fewer blocks than before).
      await source.query('TRUNCATE t');
      await source.query("INSERT INTO t (v, n) SELECT 'after-truncate-' || g, g FROM generate_series(1, 800) g");
    },
    async () => {
      await pgbenchFor(800);
      await source.query('DELETE FROM added WHERE id > 5000');
    },
    async () => {
      // A new relfilenode for both, smaller than the old one (VACUUM FULL changes no row, so
      // one more row marks this backup as different from its parent).
      await source.query('VACUUM FULL added');
      await source.query('VACUUM FULL pgbench_accounts');
      await source.query("INSERT INTO t (v, n) VALUES ('after-vacuum-full', 8)");
    },
    async () => {
      await source.query("INSERT INTO t (v, n) SELECT 'ins9-' || g, g FROM generate_series(1, 4000) g");
      await source.query("CREATE TABLE late AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 3000) g");
    },
    async () => {
      await pgbenchFor(1000);
      await source.query("UPDATE late SET h = 'changed' WHERE id % 2 = 0");
    },
  ];

  it('takes a FULL backup and a chain of ten DELTAs, each different from its parent', async () => {
    full = await backup('FULL');
    let previous = digests.get(full)!;
    for (const change of changes) {
      await change();
      const id = await backup('DELTA');
      expect(digests.get(id), `the changes before DELTA ${deltas.length + 1} changed no table`).not.toEqual(previous);
      previous = digests.get(id)!;
      deltas.push(id);
    }
    expect(new Set(deltas).size).toBe(10);
    const byId = await backupsById();
    expect(byId.get(full)!.backup_mode).toBe('FULL');
    expect(byId.get(full)!.parent_backup_id).toBeNull();
    deltas.forEach((id, k) => {
      const b = byId.get(id)!;
      expect(b.backup_mode, id).toBe('DELTA');
      expect(b.status, id).toBe('OK');
      expect(b.parent_backup_id, `parent of DELTA ${k + 1}`).toBe(k === 0 ? full : deltas[k - 1]);
    });
    // An increment stores less than the FULL backup it rests on.
    expect(Number(byId.get(deltas[0]!)!.stored_bytes)).toBeLessThan(Number(byId.get(full)!.stored_bytes));
  });

  it('restores the 1st, 2nd and 10th DELTA to the tables recorded at each', async () => {
    for (const k of [0, 1, 9]) await restoreAndCheck(deltas[k]!);
  });

  it('shows the chain: parents in json, restore_chain for one backup, children indented under parents', async () => {
    const tenth = deltas[9]!;
    const one = JSON.parse((await fx.ok(['show', '--instance', 'main', '-i', tenth, '--format', 'json'])).stdout) as { instance: string; backups: (ShowBackup & { restore_chain: unknown })[] }[];
    expect(one).toHaveLength(1);
    expect(one[0]!.backups[0]!.id).toBe(tenth);
    expect(one[0]!.backups[0]!.restore_chain).toEqual([...deltas].reverse().concat(full));
    const second = JSON.parse((await fx.ok(['show', '-i', deltas[1]!, '--format', 'json'])).stdout) as { backups: { restore_chain: unknown }[] }[];
    expect(second[0]!.backups[0]!.restore_chain).toEqual([deltas[1], deltas[0], full]);

    const plain = (await fx.ok(['show', '--instance', 'main'])).stdout;
    const rows = plain.split('\n');
    const rowOf = (id: string) => rows.findIndex((l) => l.includes(id));
    expect(rowOf(full)).toBeGreaterThanOrEqual(0);
    // The FULL backup is a root (no tree mark), each DELTA sits below its parent, one level deeper.
    expect(rows[rowOf(full)]).not.toContain('└');
    let last = rowOf(full);
    deltas.forEach((id, k) => {
      const i = rowOf(id);
      expect(i, `row of DELTA ${k + 1}`).toBeGreaterThan(last);
      // "│ └ ID" at depth 1, "│   └ ID" at depth 2, ...: two spaces per extra level, up to
      // MAX_TREE_INDENT levels (the 10th DELTA sits at the 8th level's indentation).
      const indent = '  '.repeat(Math.min(k, MAX_TREE_INDENT - 1));
      expect(rows[i], `row of DELTA ${k + 1}`).toContain(`${indent}└ ${id}`);
      expect(rows[i]).not.toContain(`${indent}  └ ${id}`);
      last = i;
    });
  });

  let merged: string;
  let ancestors: string[];

  it('merges the 10th DELTA into a FULL backup, deletes its ancestors, and restores it', async () => {
    merged = deltas[9]!;
    ancestors = [...deltas.slice(0, 9), full];
    const r = await fx.ok(['merge', '--instance', 'main', '-i', merged, '-j', '2']);
    expect(r.stdout).toContain(`backup ${merged} is now FULL`);
    const byId = await backupsById();
    expect([...byId.keys()]).toEqual([merged]);
    const b = byId.get(merged)!;
    expect(b.backup_mode).toBe('FULL');
    expect(b.parent_backup_id).toBeNull();
    expect(b.status).toBe('OK');
    for (const a of ancestors) expect(existsSync(backupDir(a)), `directory of ancestor ${a}`).toBe(false);
    const one = JSON.parse((await fx.ok(['show', '-i', merged, '--format', 'json'])).stdout) as { backups: { restore_chain: unknown }[] }[];
    expect(one[0]!.backups[0]!.restore_chain).toEqual([merged]);
    // Nothing of the merge is left behind: one generation, no journal.
    const entries = (await readdir(backupDir(merged))).sort();
    expect(entries).not.toContain('merge.json');
    expect(entries.filter((e) => /^g\d+$/.test(e))).toHaveLength(1);

    const v = await fx.ok(['validate', '--instance', 'main', '-i', merged]);
    expect(v.stdout).toContain(`backup ${merged} is valid`);
    await restoreAndCheck(merged);
  });

  let after: string[] = [];

  it('takes DELTAs on top of the merged backup, and restores one', async () => {
    await source.query("INSERT INTO t (v, n) SELECT 'post-merge-' || g, g FROM generate_series(1, 2000) g");
    await pgbenchFor(600);
    const m1 = await backup('DELTA');
    await source.query('UPDATE t SET n = -n WHERE id % 3 = 0');
    const m2 = await backup('DELTA');
    await source.query('CREATE TABLE m3 AS SELECT g AS id FROM generate_series(1, 1000) g');
    const m3 = await backup('DELTA');
    // A sibling of m2 on m1 (--parent): not a descendant of m2.
    await source.query('INSERT INTO m3 SELECT g FROM generate_series(1, 10) g');
    const sibling = await backup('DELTA', ['--parent', m1]);
    after = [m1, m2, m3, sibling];

    const byId = await backupsById();
    expect(byId.get(m1)!.parent_backup_id).toBe(merged);
    expect(byId.get(m2)!.parent_backup_id).toBe(m1);
    expect(byId.get(m3)!.parent_backup_id).toBe(m2);
    expect(byId.get(sibling)!.parent_backup_id).toBe(m1);
    const one = JSON.parse((await fx.ok(['show', '-i', m3, '--format', 'json'])).stdout) as { backups: { restore_chain: unknown }[] }[];
    expect(one[0]!.backups[0]!.restore_chain).toEqual([m3, m2, m1, merged]);
    await restoreAndCheck(m3);
  });

  it('deletes a DELTA with its descendants, and --dry-run deletes nothing', async () => {
    const [m1, m2, m3, sibling] = after as [string, string, string, string];
    const dry = await fx.ok(['delete', '--instance', 'main', '-i', m2, '--dry-run']);
    const listed = dry.stdout.split('\n').filter((l) => l.startsWith('would delete backup ')).map((l) => l.split(' ')[3]);
    expect(listed.sort()).toEqual([m2, m3].sort());
    expect((await backupsById()).size).toBe(5);
    for (const id of [m2, m3]) expect(existsSync(backupDir(id))).toBe(true);

    const real = await fx.ok(['delete', '--instance', 'main', '-i', m2]);
    expect(real.stdout).toContain('2 backup(s) deleted');
    const byId = await backupsById();
    expect([...byId.keys()].sort()).toEqual([merged, m1, sibling].sort());
    for (const id of [m2, m3]) expect(existsSync(backupDir(id)), `directory of deleted ${id}`).toBe(false);
    for (const id of [merged, m1, sibling]) expect(existsSync(backupDir(id)), `directory of kept ${id}`).toBe(true);
    const v = await fx.ok(['validate', '--instance', 'main']);
    for (const id of [merged, m1, sibling]) expect(v.stdout).toContain(`backup ${id} is valid`);
    const one = JSON.parse((await fx.ok(['show', '-i', sibling, '--format', 'json'])).stdout) as { backups: { restore_chain: unknown }[] }[];
    expect(one[0]!.backups[0]!.restore_chain).toEqual([sibling, m1, merged]);
    await restoreAndCheck(sibling);
  });

  it('refuses a DELTA whose --parent does not exist, naming it', async () => {
    const before = (await backupsById()).size;
    const bad = await fx.run(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '--parent', 'NOSUCH1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^ERROR: .*NOSUCH1/m);
    expect(bad.stderr).not.toMatch(/^\s+at /m);
    expect((await backupsById()).size).toBe(before);
  });

  it('refuses a DELTA in an instance with no FULL backup, with a one-line error', async () => {
    const fresh = await newRepo(source, 'main');
    const none = await fresh.run(['backup', '--instance', 'main', '-b', 'DELTA', '--stream']);
    expect(none.code).not.toBe(0);
    const errorLines = none.stderr.split('\n').filter((l) => l.startsWith('ERROR:'));
    expect(errorLines, none.stderr).toHaveLength(1);
    expect(errorLines[0]).toMatch(/no valid parent.*no OK backup/);
    expect(none.stderr).not.toMatch(/^\s+at /m);
    expect(none.stdout).toBe('');
    const [inst] = await fresh.showJson();
    expect(inst!.backups.filter((b) => b.status === 'OK' || b.status === 'DONE')).toEqual([]);
  });
});
