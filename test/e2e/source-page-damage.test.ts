// A damaged page in the cluster being backed up. Every page a backup reads is checked as
// PostgreSQL checks it (header, then data checksum). A page that fails twice and predates the
// backup stops it: one error naming the file and the block, exit status 6, the backup recorded
// ERROR, nothing else changed. --skip-block-validation takes the page as it is, and the backup
// records it, so that no validation judges its pages (a merge carries the record over). A failing
// page whose LSN lies between the backup's start and stop is taken as torn, since replay rewrites
// it; one past the stop LSN cannot have been written during the backup, and is refused.
//
// The table is frozen and checkpointed before its file is damaged on disk, and not read after,
// so the server holds no dirty copy of it that a checkpoint would write over the damage.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backupControlKey } from '../../src/repository/layout.js';
import { TestCluster } from '../helpers/cluster.js';
import { makeTempDir } from '../helpers/tmp.js';
import { backupIdOf, newRepo, type RepoFixture } from './pgkeep-fixture.js';

const BS = 8192;
const DAMAGED_BLOCK = 3;

/** A flipped bit in a tuple: the page's checksum no longer matches. */
const flipTupleByte = (page: Buffer) => {
  page[BS - 1000] = (page[BS - 1000] ?? 0) ^ 0x20;
};

describe('a damaged page in the source cluster (PostgreSQL 15, data checksums)', () => {
  let cluster: TestCluster;
  let fx: RepoFixture;
  let relPath: string;
  let relFile: string;
  let original: Buffer;
  let fullId: string;

  beforeAll(async () => {
    cluster = await TestCluster.create({ major: 15, name: 'srcpage' });
    await cluster.query("CREATE TABLE t AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 3000) g");
    await cluster.query('VACUUM (FREEZE) t');
    await cluster.query('CHECKPOINT');
    const [row] = await cluster.query<{ path: string; pages: number }>("SELECT pg_relation_filepath('t') AS path, (pg_relation_size('t') / 8192)::int AS pages");
    relPath = row!.path;
    expect(row!.pages).toBeGreaterThan(DAMAGED_BLOCK + 1);
    relFile = join(cluster.pgdata, relPath);
    original = Buffer.from((await readFile(relFile)).subarray(DAMAGED_BLOCK * BS, (DAMAGED_BLOCK + 1) * BS));
    fx = await newRepo(cluster);
    fullId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
  });

  afterEach(async () => {
    await writePage(original);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  /** Writes `page` as block DAMAGED_BLOCK of the table's file, in place. */
  async function writePage(page: Buffer): Promise<void> {
    const file = await readFile(relFile);
    page.copy(file, DAMAGED_BLOCK * BS);
    await writeFile(relFile, file);
  }

  /** The original page with `change` applied to a copy. */
  async function damage(change: (page: Buffer) => void): Promise<void> {
    const page = Buffer.from(original);
    change(page);
    await writePage(page);
  }

  /**
   * A FULL taken with --skip-block-validation, its record of that stripped from backup.json (as
   * in a repository written before it existed): a plain validate judges the damaged page and
   * finds it corrupt. Returns the backup's id.
   */
  async function backupJudgedByPlainValidate(): Promise<string> {
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--skip-block-validation']));
    const control = join(fx.repo, backupControlKey('main', id));
    const json = JSON.parse(await readFile(control, 'utf8')) as Record<string, unknown>;
    delete json.blockValidationSkipped;
    await writeFile(control, JSON.stringify(json));
    await fx.ok(['catalog', 'rebuild']);
    const strict = await fx.run(['validate', '--instance', 'main', '-i', id]);
    expect(strict.code).toBe(6);
    expect(strict.stderr).toContain(`ERROR: backup ${id}: ${relPath}: block ${DAMAGED_BLOCK}: page checksum mismatch`);
    return id;
  }

  /** `reason`: the parenthesised text after the block, exactly, or a pattern for it. */
  async function expectRefused(args: string[], reason: string | RegExp): Promise<void> {
    const before = await fx.showJson();
    const r = await fx.run(args);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(6);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('INFO:') && !l.startsWith('WARNING:'));
    const prefix = `ERROR: corrupt page in ${relPath}, block ${DAMAGED_BLOCK} (`;
    if (typeof reason === 'string') expect(lines[0]).toBe(`${prefix}${reason})`);
    else {
      expect(lines[0]?.startsWith(prefix)).toBe(true);
      expect(lines[0]?.slice(prefix.length, -1)).toMatch(reason);
      expect(lines[0]?.endsWith(')')).toBe(true);
    }
    expect(lines).toContain('HINT: check the cluster with pg_checksums or amcheck; --skip-block-validation backs up the page as it is');
    // One backup more, recorded ERROR; the others as they were.
    const after = await fx.showJson();
    const old = new Set(before[0]!.backups.map((b) => b.id));
    const added = after[0]!.backups.filter((b) => !old.has(b.id));
    expect(added.map((b) => b.status)).toEqual(['ERROR']);
    expect(after[0]!.backups.filter((b) => old.has(b.id))).toEqual(before[0]!.backups);
  }

  it('refuses a FULL backup of a page whose checksum does not match, with one copier or two', async () => {
    await damage(flipTupleByte);
    await expectRefused(['backup', '--instance', 'main', '-b', 'FULL', '--stream'], 'checksum mismatch');
    await expectRefused(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2'], 'checksum mismatch');
  });

  it('refuses a DELTA backup, which reads every page, of the same page', async () => {
    await damage(flipTupleByte);
    await expectRefused(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '--parent', fullId], 'checksum mismatch');
  });

  it('refuses a page whose header is impossible (pd_special past the page)', async () => {
    await damage((page) => page.writeUInt16LE(BS + 8, 16));
    await expectRefused(['backup', '--instance', 'main', '-b', 'FULL', '--stream'], 'invalid page header');
  });

  it('backs the page up as it is with --skip-block-validation, and records that no page of it is judged', async () => {
    await damage(flipTupleByte);
    const damaged = await readFile(relFile);
    const id = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2', '--skip-block-validation']));
    const shown = async () => (await fx.showJson())[0]!.backups.find((b) => b.id === id) as unknown as { status: string; block_validation_skipped: boolean };
    // The backup's own validation judged no page, so the backup is OK; a later one neither.
    expect(await shown()).toMatchObject({ status: 'OK', block_validation_skipped: true });
    await fx.ok(['validate', '--instance', 'main', '-i', id]);
    expect((await shown()).status).toBe('OK');
    // Its stored and content checksums still count: a flipped stored byte is found.
    const target = join(await makeTempDir('srcpage-restore'), 'data');
    await fx.ok(['restore', '--instance', 'main', '-i', id, '-D', target]);
    expect((await readFile(join(target, relPath))).equals(damaged)).toBe(true);
    // A backup taken without the flag is judged page by page, and says so.
    const full = (await fx.showJson())[0]!.backups.find((b) => b.id === fullId) as unknown as { block_validation_skipped: boolean };
    expect(full.block_validation_skipped).toBe(false);
  });

  it('judges pages of an older backup unless validate is given --skip-block-validation', async () => {
    await damage(flipTupleByte);
    const id = await backupJudgedByPlainValidate();
    await fx.ok(['validate', '--instance', 'main', '-i', id, '--skip-block-validation']);
    expect((await fx.showJson())[0]!.backups.find((b) => b.id === id)!.status).toBe('OK');
  });

  it('refuses a failing page whose LSN is past the stop LSN, which no write during the backup makes', async () => {
    // pd_lsn FFFFFFFF/0: past the start LSN, so a torn read at first sight, but past the stop
    // LSN too. (A page really torn during the backup, LSN between start and stop, is accepted:
    // that cannot be set up from outside the backup; test/unit/torn-pages.test.ts has the rule.)
    const futureLsn = (page: Buffer) => {
      flipTupleByte(page);
      page.writeUInt32LE(0xffffffff, 0);
      page.writeUInt32LE(0, 4);
    };
    await damage(futureLsn);
    await expectRefused(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '-j', '2'], /^it fails its checks, and its LSN FFFFFFFF\/0 is past the backup's stop LSN [0-9A-F]+\/[0-9A-F]+: no write during the backup made it$/);

    // Validation holds a stored page to the same window: its LSN past the start does not save it.
    await backupJudgedByPlainValidate();
  });

  it('carries the record over to a merge of a chain holding such a backup', async () => {
    // The parent skipped, the child did not: the merged backup holds the parent's pages.
    const parent = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream', '--skip-block-validation']));
    const child = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'DELTA', '--stream', '--parent', parent]));
    expect((await fx.showJson())[0]!.backups.find((b) => b.id === child)).toMatchObject({ block_validation_skipped: false });
    await fx.ok(['merge', '--instance', 'main', '-i', child]);
    const merged = (await fx.showJson())[0]!.backups.find((b) => b.id === child) as unknown as { backup_mode: string; block_validation_skipped: boolean };
    expect(merged).toMatchObject({ backup_mode: 'FULL', block_validation_skipped: true });
  });
});

// PTRACK reads only the pages the change map lists, through its own reader (each run read and
// checked on its own, synchronously while the file is in the page cache): a listed page that
// fails its checks stops the backup as a FULL's would, with the same line.
describe('a damaged page that the change map lists (PostgreSQL 17, WAL summaries, data checksums)', () => {
  let cluster: TestCluster;
  let fx: RepoFixture;

  beforeAll(async () => {
    cluster = await TestCluster.create({ major: 17, name: 'srcpage17', settings: { summarize_wal: 'on', autovacuum: 'off' } });
    await cluster.query("CREATE TABLE t AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 3000) g");
    await cluster.query('VACUUM (FREEZE) t');
    await cluster.query('CHECKPOINT');
    fx = await newRepo(cluster);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('refuses a PTRACK backup whose listed page fails its checksum, naming file and block, and records it ERROR', async () => {
    const fullId = backupIdOf(await fx.ok(['backup', '--instance', 'main', '-b', 'FULL', '--stream']));
    // Rows on block DAMAGED_BLOCK and on a later one change (the map lists both pages), reach
    // the disk, and are not read again: the server keeps no dirty copy to write over the damage.
    await cluster.query(`UPDATE t SET pad = repeat('y', 200) WHERE (ctid::text::point)[0]::int IN (${DAMAGED_BLOCK}, ${DAMAGED_BLOCK + 4})`);
    await cluster.query('CHECKPOINT');
    const [row] = await cluster.query<{ path: string }>("SELECT pg_relation_filepath('t') AS path");
    const relPath = row!.path;
    const file = await readFile(join(cluster.pgdata, relPath));
    flipTupleByte(file.subarray(DAMAGED_BLOCK * BS, (DAMAGED_BLOCK + 1) * BS));
    await writeFile(join(cluster.pgdata, relPath), file);

    const before = (await fx.showJson())[0]!.backups.map((b) => b.id);
    const r = await fx.run(['backup', '--instance', 'main', '-b', 'PTRACK', '--stream', '--parent', fullId], { env: { PGKEEP_DEBUG: '1' } });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(6);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR:'));
    expect(errors).toEqual([`ERROR: corrupt page in ${relPath}, block ${DAMAGED_BLOCK} (checksum mismatch)`]);
    // Read from the page cache, one run at a time: not the asynchronous reads of a file on disk.
    expect(r.stderr).not.toContain('come from disk');
    expect(r.stderr).toMatch(/change map read/);
    const after = (await fx.showJson())[0]!.backups;
    expect(after.filter((b) => !before.includes(b.id)).map((b) => [b.backup_mode, b.status])).toEqual([['PTRACK', 'ERROR']]);
  });
});
