// fileContent on a real store: an uncompressed stored file is hashed once (its stored checksum is
// its content checksum), and a flipped byte or a short file is still refused, as for a
// compressed one, which is checked against the manifest's content checksum.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CompressAlg, FileEntry } from '../../src/core/backup-types.js';
import type { FilePlan } from '../../src/core/file-plan.js';
import { fileContent } from '../../src/app/chain/file-content.js';
import { defaultLevel } from '../../src/repository/codecs.js';
import { backupDataKey } from '../../src/repository/layout.js';
import { StoredFileWriter } from '../../src/repository/stored-file.js';
import { PosixStore } from '../../src/storage/posix-store.js';

const PATH = 'base/5/16384';

describe('fileContent of a file one backup holds whole', () => {
  let root: string;
  let store: PosixStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'pgkeep-filecontent-'));
    store = new PosixStore(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Stores `content` as backup B1's copy of PATH and returns the plan that restores it. */
  async function stored(content: Buffer, alg: CompressAlg): Promise<FilePlan> {
    const w = await StoredFileWriter.open(store, backupDataKey('main', 'B1', PATH), alg, defaultLevel(alg));
    await w.write(content);
    const r = await w.finish();
    const entry: FileEntry = { path: PATH, kind: 'data', mode: 0o600, mtimeMs: 0, size: r.size, storage: 'full', storedSize: r.storedSize, storedChecksum: r.storedChecksum, checksum: r.checksum, compressAlg: alg, blocks: r.size / 8192 };
    return { entry, sources: [{ backupId: 'B1', generation: 0, entry }] } as FilePlan;
  }
  const read = async (plan: FilePlan) => {
    const parts: Buffer[] = [];
    for await (const chunk of fileContent(store, 'main', plan, 8192)) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts);
  };
  const storedPath = () => join(root, backupDataKey('main', 'B1', PATH));

  it.each(['none', 'zstd'] as CompressAlg[])('%s: gives the content back, and refuses a flipped byte and a short file', async (alg) => {
    const content = randomBytes(3 * 1024 * 1024 + 8192 * 3);
    const plan = await stored(content, alg);
    // Uncompressed, the two checksums are one: the case fileContent hashes once.
    if (alg === 'none') expect(plan.entry.storedChecksum).toBe(plan.entry.checksum);
    expect((await read(plan)).equals(content)).toBe(true);

    const fh = await open(storedPath(), 'r+');
    const at = 2 * 1024 * 1024 + 17;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    await fh.write(Buffer.from([b[0]! ^ 0x40]), 0, 1, at);
    await fh.close();
    await expect(read(plan)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });

    await stored(content, alg);
    await truncate(storedPath(), (await stat(storedPath())).size - 8192);
    await expect(read(plan)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
  });

  it('checks the content checksum when the manifest\'s differs from the stored one', async () => {
    const content = randomBytes(256 * 1024);
    const plan = await stored(content, 'none');
    // A manifest whose content checksum is not the stored file's: the stored bytes pass their own
    // check, and the content check, which is not skipped, refuses them.
    const wrong = { ...plan, entry: { ...plan.entry, checksum: '0123456789abcdef' } };
    await expect(read(wrong)).rejects.toThrow(/checksum differs from the manifest/);
  });
});
