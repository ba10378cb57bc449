// Large files stored in parts (docs/repository-format.md, "Parts"): with -j 2 a relation file
// larger than a part is copied, validated and restored part by part on every copier. Parts of
// 4 MiB (PGKEEP_PART_BYTES) cut pgbench_accounts of scale 2 (26 MB) into 7 parts. Checks: the
// manifest and the stored part files; FULL, DELTA over it, and the merge of the two restore to
// servers holding the source's data; restores with and without parts are byte-identical; a
// damaged part is named by validate and refused by restore, and --force leaves that file out.
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { relationDigests } from '../helpers/file-digests.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, readManifestFile, type RepoFixture } from './pgkeep-fixture.js';

const PART = 4 * 1024 * 1024;
const PARTS = { env: { PGKEEP_PART_BYTES: String(PART), PGKEEP_DEBUG: '1' } };

describe('files stored in parts, PostgreSQL 15', () => {
  let source: TestCluster;
  let fx: RepoFixture;
  let accounts = '';
  let full = '';
  let delta = '';
  const restored: TestCluster[] = [];

  beforeAll(async () => {
    source = await TestCluster.create({ major: 15, name: 'parted', settings: { autovacuum: 'off' } });
    await source.pgbenchInit(2);
    await source.query('CHECKPOINT');
    fx = await newRepo(source);
    accounts = (await source.query<{ p: string }>("SELECT pg_relation_filepath('pgbench_accounts') AS p"))[0]!.p;
  });

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await source?.destroy();
  });

  const manifest = (id: string) => readManifestFile(fx.repo, id);

  async function restoreAndCheck(id: string, name: string, expected: Awaited<ReturnType<TestCluster['tableDigest']>>): Promise<string> {
    const dest = join(await makeTempDir(name), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest, '-j', '2']);
    const c = await TestCluster.adopt(dest, { major: 15, name });
    restored.push(c);
    expect(await c.tableDigest()).toEqual(expected);
    await c.stop();
    return dest;
  }

  it('stores a large relation file as parts, copied by both copiers, and restores it', async () => {
    const before = await source.tableDigest();
    const r = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2'], PARTS);
    expect(r.stderr).toMatch(/worker thread\(s\) running copy-worker\.js/);
    full = backupIdOf(r);
    const m = await manifest(full);
    expect(m.version).toBe(2);
    const e = m.files.get(accounts)!;
    expect(e.size).toBeGreaterThan(6 * PART);
    expect(e.storage).toBe('full');
    expect(e.partSize).toBe(PART);
    expect(e.parts).toHaveLength(Math.ceil(e.size / PART));
    expect(e.storedSize).toBe(e.parts!.reduce((n, p) => n + p.storedSize, 0));
    const data = join(fx.repo, 'instances', 'main', 'backups', full, 'data');
    for (let i = 0; i < e.parts!.length; i++) expect((await readFile(join(data, `${accounts}.part${i}`))).length).toBe(e.parts![i]!.storedSize);
    await expect(access(join(data, accounts))).rejects.toThrow();
    // Small files are not cut: pgbench_branches is one stored file.
    expect([...m.files.values()].filter((l) => l.parts).every((l) => l.size > PART)).toBe(true);

    const v = await fx.ok(['validate', '--instance', 'main', '-i', full, '-j', '2']);
    expect(v.stdout).toMatch(/is valid/);
    const parted = await restoreAndCheck(full, 'parted-full', before);

    // The same data backed up by one copier is stored whole, and restores to the same bytes.
    const whole = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '1'], PARTS));
    const w = (await manifest(whole)).files.get(accounts)!;
    expect(w.parts).toBeUndefined();
    expect(w.size).toBe(e.size);
    const plain = join(await makeTempDir('parted-whole'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', whole, '-D', plain, '-j', '1']);
    const [a, b] = [await relationDigests(parted), await relationDigests(plain)];
    expect(a.get(accounts)).toBeDefined();
    expect(a.get(accounts)).toBe(b.get(accounts));

    // A DELTA over that whole file scans it in parts: its entry takes the part-tree form.
    const scan = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2'], PARTS));
    const d = (await manifest(scan)).files.get(accounts)!;
    expect(d.partSize).toBe(PART);
    expect(d.storage).not.toBe('full');
    await fx.ok(['validate', '--instance', 'main', '-i', scan]);
    await restoreAndCheck(scan, 'parted-scan', before);
    await fx.ok(['delete', '--instance', 'main', '-i', scan]);
    await fx.ok(['delete', '--instance', 'main', '-i', whole]);
  });

  it('takes a DELTA over the parts, and merges the chain', async () => {
    await source.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 97 = 0');
    await source.query('CHECKPOINT');
    const after = await source.tableDigest();
    delta = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2'], PARTS));
    const e = (await manifest(delta)).files.get(accounts)!;
    expect(e.storage).toBe('delta');
    // Checked in the parent's part-tree form, so that the chain's restore can verify it.
    expect(e.partSize).toBe(PART);
    await restoreAndCheck(delta, 'parted-delta', after);

    await fx.ok(['merge', '--instance', 'main', '-i', delta, '-j', '2']);
    const merged = (await fx.showJson())[0]!.backups.find((b) => b.id === delta)!;
    expect(merged.backup_mode).toBe('FULL');
    await fx.ok(['validate', '--instance', 'main', '-i', delta]);
    await restoreAndCheck(delta, 'parted-merged', after);
  });

  it('names a damaged part, refuses to restore it, and leaves it out with --force', async () => {
    const again = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2'], PARTS));
    const part = join(fx.repo, 'instances', 'main', 'backups', again, 'data', `${accounts}.part2`);
    const bytes = await readFile(part);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    await writeFile(part, bytes);

    const dest = join(await makeTempDir('parted-bad'), 'data');
    const bad = await fx.run(['restore', '--instance', 'main', '-i', again, '-D', dest, '-j', '2']);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toMatch(new RegExp(`^ERROR: .*${accounts.replace(/[.]/g, '\\.')}\\.part2`, 'm'));
    const check = await fx.run(['validate', '--instance', 'main', '-i', again, '-j', '2']);
    expect(check.code).toBe(6);
    expect(check.stdout + check.stderr).toMatch(new RegExp(`${accounts.replace(/[.]/g, '\\.')}.*part 2`));
    const forced = join(await makeTempDir('parted-force'), 'data');
    const f = await fx.run(['restore', '--instance', 'main', '-i', again, '-D', forced, '-j', '2', '--force']);
    expect(f.code).toBe(6);
    expect(f.stdout + f.stderr).toContain(accounts);
    await expect(access(join(forced, accounts))).rejects.toThrow();
    await access(join(forced, 'PG_VERSION'));
  });
});
