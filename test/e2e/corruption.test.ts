// Damage to every kind of repository file, each damaged three ways (one byte flipped, cut to half
// its length, deleted): a stored full data file, a page-delta file, manifest.jsonl, backup.json,
// an archived WAL segment a backup without --stream needs, and the catalog. `validate` must name
// the file, mark the backup CORRUPT and its descendants ORPHAN; restore refuses both; and
// `restore --force` restores the rest, lists what it left out and exits non-zero (one --force per
// kind, on the flipped byte). A damaged catalog gives one clear error and `catalog rebuild`
// recreates it from the repository.
//
// The chain FULL -> DELTA -> DELTA is built once; each case works on a `cp -a` of the repository.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGKEEP_BIN, runPgkeep, type PgkeepResult } from '../helpers/cli.js';
import { TestCluster } from '../helpers/cluster.js';
import { DAMAGES, damageFile, FaultTotals, sleep, type Damage } from '../helpers/faults.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { backupIdOf, connectionArgs, readManifestFile, type ShowInstance } from './pgkeep-fixture.js';

const execFileAsync = promisify(execFile);

interface Kind {
  name: string;
  /** Backup whose file is damaged, and the file, relative to the repository. */
  backup: () => string;
  file: () => string;
  /** How validate names the file. */
  reported: () => string;
  /** Backup restored with --force, and what it must list as not restored (undefined: nothing). */
  forceTarget: () => string;
  forceMissing: () => string | undefined;
}

describe('corruption of each kind of repository file (PostgreSQL 15)', () => {
  let source: TestCluster;
  let repo: string;
  let full: string;
  let d1: string;
  let d2: string;
  let accounts: string;
  let fullWal: string;
  const totals = new FaultTotals();

  const runIn = (r: string, args: string[]): Promise<PgkeepResult> => runPgkeep(args, { asPostgres: true, env: { PGKEEP_REPO: r } });
  const okIn = async (r: string, args: string[]): Promise<PgkeepResult> => {
    const res = await runIn(r, args);
    expect(res.code, `pgkeep ${args.join(' ')}:\n${res.stdout}\n${res.stderr}`).toBe(0);
    return res;
  };
  const backupDir = (id: string) => `instances/main/backups/${id}`;
  const statuses = async (r: string): Promise<Record<string, string>> => {
    const [inst] = JSON.parse((await okIn(r, ['show', '--format', 'json'])).stdout) as ShowInstance[];
    return Object.fromEntries(inst!.backups.map((b) => [b.id, b.status]));
  };
  const childrenOf = (id: string): string[] => (id === full ? [d1, d2] : id === d1 ? [d2] : []);

  async function copyRepo(): Promise<{ dir: string; copy: string }> {
    const dir = await makeTempDir('corrupt-copy', { owner: 'postgres' });
    await execFileAsync('cp', ['-a', repo, join(dir, 'repo')]);
    return { dir, copy: join(dir, 'repo') };
  }

  beforeAll(async () => {
    repo = join(await makeTempDir('corrupt', { owner: 'postgres' }), 'repo');
    const archiveCommand = `"${process.execPath}" "${PGKEEP_BIN}" archive-push -B "${repo}" --instance main --wal-file-path "%p" --wal-file-name "%f"`;
    source = await TestCluster.create({ major: 15, name: 'corrupt', settings: { archive_mode: 'on', archive_command: archiveCommand } });
    await okIn(repo, ['init']);
    await okIn(repo, ['add-instance', '--instance', 'main', '-D', source.pgdata, ...connectionArgs(source)]);
    await okIn(repo, ['set-config', '--instance', 'main', '--compress-algorithm', 'zstd']);
    await source.pgbenchInit(1);
    const burst = async (ms: number) => {
      const bench = source.startPgbench({ clients: 2 });
      await sleep(ms);
      await bench.stop();
    };
    // Without --stream: each backup needs its WAL from the archive.
    full = backupIdOf(await okIn(repo, ['backup', '--instance', 'main', '-b', 'FULL', '-j', '2']));
    await burst(1000);
    d1 = backupIdOf(await okIn(repo, ['backup', '--instance', 'main', '-b', 'DELTA', '-j', '2']));
    await burst(500);
    d2 = backupIdOf(await okIn(repo, ['backup', '--instance', 'main', '-b', 'DELTA', '-j', '2']));
    accounts = (await source.query<{ p: string }>("SELECT pg_relation_filepath('pgbench_accounts') AS p"))[0]!.p;
    // Stop the server: the archive must not change under the copies.
    await source.stop();

    expect(await statuses(repo)).toEqual({ [full]: 'OK', [d1]: 'OK', [d2]: 'OK' });
    const manifest = async (id: string) => (await readManifestFile(repo, id)).files;
    expect((await manifest(full)).get(accounts)?.storage).toBe('full');
    expect((await manifest(d1)).get(accounts)?.storage, 'pgbench changed pgbench_accounts: DELTA stores a page-delta file').toBe('delta');
    const [inst] = JSON.parse((await okIn(repo, ['show', '--format', 'json'])).stdout) as ShowInstance[];
    const start = inst!.backups.find((b) => b.id === full)!.start_lsn;
    const [hi, lo] = start.split('/').map((h) => BigInt(`0x${h}`)) as [bigint, bigint];
    const seg = ((hi << 32n) | lo) / (16n * 1024n * 1024n);
    fullWal = `00000001${(seg / 256n).toString(16).toUpperCase().padStart(8, '0')}${(seg % 256n).toString(16).toUpperCase().padStart(8, '0')}`;
    expect(existsSync(join(repo, 'instances/main/wal', fullWal)), `WAL ${fullWal} archived`).toBe(true);
  });

  afterAll(async () => {
    console.log(totals.report('corruption suite'));
    await source?.destroy();
    expect(totals.dataLost).toBe(0);
  });

  const kinds: Kind[] = [
    { name: 'stored full data file', backup: () => full, file: () => `${backupDir(full)}/data/${accounts}`, reported: () => accounts, forceTarget: () => d2, forceMissing: () => accounts },
    { name: 'page-delta file', backup: () => d1, file: () => `${backupDir(d1)}/data/${accounts}`, reported: () => accounts, forceTarget: () => d2, forceMissing: () => accounts },
    { name: 'manifest.jsonl', backup: () => full, file: () => `${backupDir(full)}/manifest.jsonl`, reported: () => 'manifest.jsonl', forceTarget: () => d1, forceMissing: () => `manifest of backup ${full}` },
    // The catalog still holds the record: validate rewrites backup.json from it, so nothing is lost.
    { name: 'backup.json', backup: () => full, file: () => `${backupDir(full)}/backup.json`, reported: () => 'backup.json', forceTarget: () => d2, forceMissing: () => undefined },
    { name: 'archived WAL segment', backup: () => full, file: () => `instances/main/wal/${fullWal}`, reported: () => `instances/main/wal/${fullWal}`, forceTarget: () => full, forceMissing: () => `instances/main/wal/${fullWal}` },
  ];
  const cases = kinds.flatMap((k) => DAMAGES.map((d) => ({ kind: k, damage: d })));

  it.each(cases.map((c) => [c.kind.name, c.damage, c] as const))('%s, %s: validate names it; CORRUPT and ORPHAN; restore refuses', async (_n, _d, { kind, damage }) => {
    const { dir, copy } = await copyRepo();
    const label = `${kind.name} (${damage})`;
    totals.fault(`${damage} ${kind.name}`);
    try {
      await damageFile(join(copy, kind.file()), damage as Damage);
      const v = await runIn(copy, ['validate', '--instance', 'main', '-i', kind.backup()]);
      totals.backupsValidated++;
      if (v.code !== 6 || !v.stderr.includes(`backup ${kind.backup()}: ${kind.reported()}: `)) totals.lost(`undetected: ${label}`);
      expect(v.code, `${label}:\n${v.stderr}`).toBe(6);
      expect(v.stderr).toContain(`ERROR: backup ${kind.backup()}: ${kind.reported()}: `);
      expect(v.stderr).toContain(`ERROR: backup ${kind.backup()} is CORRUPT`);
      const st = await statuses(copy);
      expect(st[kind.backup()], label).toBe('CORRUPT');
      for (const c of childrenOf(kind.backup())) expect(st[c], `${label}: descendant ${c}`).toBe('ORPHAN');

      // The newest backup of the chain: ORPHAN when an ancestor is damaged, else the CORRUPT one.
      const id = childrenOf(kind.backup()).at(-1) ?? kind.backup();
      const refusedDest = join(dir, 'refused');
      const r = await runIn(copy, ['restore', '--instance', 'main', '-i', id, '-D', refusedDest]);
      expect(r.code, `${label}: restore -i ${id}\n${r.stderr}`).toBe(6);
      expect(r.stderr).toContain(`backup ${id} is ${st[id]} and cannot be restored`);
      expect(existsSync(refusedDest), 'nothing written').toBe(false);
      if (damage !== 'flip') return;

      // Salvage: --force restores what it can and lists the rest.
      const dest = join(dir, 'forced');
      const target = kind.forceTarget();
      const f = await runIn(copy, ['restore', '--instance', 'main', '-i', target, '-D', dest, '--force', '--archive-mode', 'off']);
      const expected = kind.forceMissing();
      if (expected === undefined) {
        expect(f.code, `${label}: --force with nothing missing:\n${f.stderr}`).toBe(0);
        // Nothing was lost: the restored cluster starts and holds pgbench's invariant.
        const c = await TestCluster.adopt(dest, { major: 15, name: 'corrupt-forced' });
        try {
          expect((await c.pgbenchInvariant()).ok, `${label}: pgbench invariant`).toBe(true);
          totals.restoresVerified++;
        } finally {
          await c.destroy();
        }
        return;
      }
      expect(f.code, `${label}: restore --force\n${f.stderr}`).toBe(6);
      expect(f.stderr).toContain(`WARNING: not restored: ${expected}: `);
      expect(f.stderr).toMatch(new RegExp(`ERROR: restore of backup ${target} into \\S+ is incomplete: \\d+ item\\(s\\) could not be restored`));
      expect(f.stderr).toContain('HINT: the data directory is incomplete: do not start it as-is');
      // pg_control is stored by every backup; PG_VERSION only by the FULL one, whose manifest may be the damaged file.
      expect(existsSync(join(dest, 'global/pg_control')), 'the rest is restored').toBe(true);
      if (kind.name !== 'manifest.jsonl') expect(existsSync(join(dest, 'PG_VERSION')), 'the rest is restored').toBe(true);
      if (expected === accounts) expect(existsSync(join(dest, accounts)), 'no file that fails its checksum is written').toBe(false);
    } finally {
      await removeTempDir(dir);
    }
  });

  it.each(DAMAGES)('catalog.sqlite, %s: a clear error naming `pgkeep catalog rebuild`, which recreates it', async (damage) => {
    const { dir, copy } = await copyRepo();
    totals.fault(`${damage} catalog.sqlite`);
    try {
      // Offset 4096: the header of the catalog's second page, a b-tree page.
      await damageFile(join(copy, 'catalog.sqlite'), damage, 4096);
      const show = await runIn(copy, ['show']);
      expect(show.code, show.stderr).toBe(4);
      expect(show.stderr).toMatch(/^ERROR: catalog \S+catalog\.sqlite is (damaged|missing or empty)/m);
      expect(show.stderr).toContain('HINT: recreate it from the repository with `pgkeep catalog rebuild`');
      expect(show.stderr, 'no raw exception').not.toMatch(/internal error|^\s+at /m);
      const rebuilt = await okIn(copy, ['catalog', 'rebuild']);
      expect(rebuilt.stdout).toContain('catalog rebuilt: 1 instance(s), 3 backup(s)');
      expect(await statuses(copy)).toEqual({ [full]: 'OK', [d1]: 'OK', [d2]: 'OK' });
      const v = await okIn(copy, ['validate', '--instance', 'main']);
      totals.backupsValidated += 3;
      expect(v.stdout.match(/is valid/g)).toHaveLength(3);
    } finally {
      await removeTempDir(dir);
    }
  });
});
