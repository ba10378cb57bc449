// Resuming over zero pages (docs/resume.md, "Why a reused file is right") on PostgreSQL 17.
// COPY extends a table by several pages at a time (PostgreSQL 16 and later) and leaves those it
// has not filled as zeros on disk, as a bulk load or a pg_restore leaves the tables it loads. An
// interrupted FULL backup of such a table is resumed by linking the table's stored file, not by
// copying it again (a zero page used to keep its whole file out), and the restored server holds
// the rows.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { zeroPageCount } from '../helpers/file-digests.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';
import { killAttempt, startWaitingAttempt, storedFile } from './resume-attempt.js';

const ROWS = 300_000;

describe('resume over a table bulk-loaded with COPY (PostgreSQL 17)', () => {
  let cluster: TestCluster;
  let fx: RepoFixture;
  let loadedPath: string;

  beforeAll(async () => {
    cluster = await TestCluster.create({
      major: 17,
      name: 'resume-zero',
      // Archiving that never succeeds: a backup without --stream copies everything and then waits.
      settings: { archive_mode: 'on', archive_command: 'false', autovacuum: 'off' },
    });
    await cluster.query('CREATE TABLE loaded (id int)');
    await cluster.query(`COPY loaded FROM PROGRAM 'seq 1 ${ROWS}'`);
    // Hint bits and visibility set now, so that reading the table later does not write its pages.
    await cluster.query('VACUUM (FREEZE, ANALYZE)');
    await cluster.query('CHECKPOINT');
    loadedPath = (await cluster.query<{ p: string }>("SELECT pg_relation_filepath('loaded') AS p"))[0]!.p;
    fx = await newRepo(cluster);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('links the table into the resumed backup, zero pages and all, and restores it', async () => {
    expect(await zeroPageCount(join(cluster.pgdata, loadedPath)), 'COPY left no zero page on disk: the test needs one').toBeGreaterThan(0);

    const attempt = await startWaitingAttempt(fx, 'FULL', 120, loadedPath);
    await killAttempt(attempt);
    const old = await stat(storedFile(fx, attempt.id, loadedPath));

    const r = await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2'], { env: { PGKEEP_DEBUG: '1' } });
    const id = backupIdOf(r);
    expect(r.stderr).toContain(`resuming interrupted backup ${attempt.id}`);
    expect(r.stderr).not.toContain(`DEBUG: ${loadedPath} copied again`);
    expect((await stat(storedFile(fx, id, loadedPath))).ino, r.stderr).toBe(old.ino);

    const dest = join(await makeTempDir('resume-zero-restore'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', dest]);
    const restored = await TestCluster.adopt(dest, { major: 17, name: 'resume-zero-restored' });
    try {
      const [row] = await restored.query<{ n: string; s: string }>('SELECT count(*)::text AS n, sum(id)::text AS s FROM loaded');
      expect(row).toEqual({ n: String(ROWS), s: String((ROWS * (ROWS + 1)) / 2) });
    } finally {
      await restored.destroy();
    }
  });
});
