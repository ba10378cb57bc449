// Incremental backups taken while pgbench writes, as they are taken in production: other tests
// take DELTA, PAGE and PTRACK with nothing writing between them, so that their restores can be
// compared byte for byte. Here pgbench runs from before the FULL backup until after the last
// increment, on 13 (the old backup functions) and 17 (PTRACK from WAL summaries):
//
//   FULL -> PAGE -> PTRACK (17) -> DELTA, each with the one before as parent, all --stream.
//
// Each increment is validated, then restored as a chain and started. The restore replays only
// the backup's own WAL (no restore_command), so a page an increment failed to carry (changed
// before its start, untouched while it ran) is not rewritten by a later full-page image: it
// would show in pgbench's invariant (balances across four tables), in amcheck, or in the data
// checksums checked offline afterwards. pgbench_history grows all the while, so relations are
// extended under the backups too.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, invariantText, type PgMajor, type PgbenchRun } from '../helpers/cluster.js';
import { sleep } from '../helpers/faults.js';
import { makeTempDir } from '../helpers/tmp.js';
import { archiveRepoDir, backupIdOf, createArchivingInstance, postgresRunner, type ShowBackup, type ShowInstance } from './pgkeep-fixture.js';

describe.each([13, 17] as PgMajor[])('incremental backups under pgbench load on PostgreSQL %i', (major) => {
  let repo: string;
  let source: TestCluster;
  let bench: PgbenchRun | undefined;
  const others: TestCluster[] = [];
  const { ok } = postgresRunner(() => repo);
  const backups = async (): Promise<ShowBackup[]> => (JSON.parse((await ok(['show', '--format', 'json'])).stdout) as ShowInstance[])[0]!.backups;
  /** A backup while pgbench goes on writing, with a moment of writes before it. */
  const backup = async (mode: string, parent?: string): Promise<string> => {
    await sleep(700);
    return backupIdOf(await ok(['backup', '--instance', 'main', '-b', mode, '--stream', '-j', '2', ...(parent ? ['--parent', parent] : [])]));
  };

  beforeAll(async () => {
    repo = await archiveRepoDir(`loadrepo${major}`);
    source = await createArchivingInstance(ok, repo, { major, name: `load${major}` });
    await source.pgbenchInit(2);
  });

  afterAll(async () => {
    await bench?.stop();
    for (const c of others) await c.destroy();
    await source?.destroy();
  });

  it(`restores each of FULL, PAGE${major >= 17 ? ', PTRACK' : ''} and DELTA taken under load to a consistent server`, async () => {
    bench = source.startPgbench({ clients: 2 });
    const full = await backup('FULL');
    const page = await backup('PAGE', full);
    const ptrack = major >= 17 ? await backup('PTRACK', page) : undefined;
    const delta = await backup('DELTA', ptrack ?? page);
    await sleep(500);
    await bench.stop();
    bench = undefined;
    expect((await source.pgbenchInvariant()).delta, 'pgbench wrote').not.toBe(0n);

    const chain = [page, ...(ptrack ? [ptrack] : []), delta];
    const all = await backups();
    for (const id of [full, ...chain]) expect(all.find((b) => b.id === id)?.status, id).toBe('OK');
    if (ptrack) expect(all.find((b) => b.id === ptrack)!.change_source).toBe('wal-summary');
    expect(all.find((b) => b.id === delta)!.parent_backup_id).toBe(ptrack ?? page);

    for (const id of chain) {
      const dir = join(await makeTempDir(`load-r-${id}`, { owner: 'postgres' }), 'data');
      await ok(['restore', '--instance', 'main', '-i', id, '-D', dir, '-j', '2', '--archive-mode', 'off']);
      const c = await TestCluster.adopt(dir, { major, name: `load${major}-${id}` });
      others.push(c);
      const inv = await c.pgbenchInvariant();
      expect(inv.ok, `${id}: ${invariantText(inv)}`).toBe(true);
      expect(inv.delta, id).not.toBe(0n);
      await c.amcheck();
      await c.stop();
      await c.checksumsCheck();
    }
  });
});
