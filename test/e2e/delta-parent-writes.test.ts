// A DELTA must take every page changed since its parent STARTED, not since it stopped: a page
// the parent copied early and the server changed later in the same backup has an LSN between the
// parent's start and stop. WAL replay repairs it when the parent is restored alone, but a DELTA
// restore replays only from the DELTA's own start, so a DELTA that compared page LSNs with the
// parent's stop LSN would restore the parent's stale copy of that page.
//
// The parent here is taken while pgbench writes, with one worker so that the copy takes long
// enough for pages to change after they were copied. Then writes stop, and a DELTA and a FULL
// taken one after the other must restore identical relation files.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, invariantText } from '../helpers/cluster.js';
import { relationDigests } from '../helpers/file-digests.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

describe('DELTA over a parent taken under writes (PostgreSQL 15)', () => {
  let source: TestCluster;
  let fx: RepoFixture;

  beforeAll(async () => {
    source = await TestCluster.create({ major: 15, name: 'parent-writes', settings: { autovacuum: 'off' } });
    await source.pgbenchInit(10);
    fx = await newRepo(source);
  });

  afterAll(async () => {
    await source?.destroy();
  });

  it('takes the pages changed while the parent was being copied', async () => {
    const bench = source.startPgbench({ clients: 2 });
    let parent: string;
    try {
      parent = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '1']));
    } finally {
      await bench.stop();
    }
    const [inst] = await fx.showJson();
    const p = inst!.backups.find((b) => b.id === parent)!;
    // Writes landed inside the parent's own start..stop interval: the case this test is about.
    expect(BigInt(`0x${p.stop_lsn!.replace('/', '').padStart(16, '0')}`)).toBeGreaterThan(BigInt(`0x${p.start_lsn.replace('/', '').padStart(16, '0')}`) + 8192n);

    await source.query('CHECKPOINT');
    const delta = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '-j', '2']));
    const full = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2']));

    const destDelta = join(await makeTempDir('pw-d'), 'data');
    const destFull = join(await makeTempDir('pw-f'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', delta, '-D', destDelta, '-j', '2']);
    await fx.ok(['restore', '--instance', 'main', '-i', full, '-D', destFull, '-j', '2']);
    const a = await relationDigests(destDelta);
    const b = await relationDigests(destFull);
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    expect([...a.keys()].filter((k) => a.get(k) !== b.get(k))).toEqual([]);

    const restored = await TestCluster.adopt(destDelta, { major: 15, name: 'parent-writes-restored' });
    try {
      const inv = await restored.pgbenchInvariant();
      expect(inv.delta).not.toBe(0n); // pgbench really ran
      expect(inv.ok, invariantText(inv)).toBe(true);
    } finally {
      await restored.destroy();
    }
  });
});
