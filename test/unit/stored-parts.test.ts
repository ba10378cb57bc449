// Files stored in parts (docs/repository-format.md, "Parts"): the part-tree checksum, the checks
// a manifest entry must pass, and which parts a copy keeps when the file changed size under it.
import { describe, expect, it } from 'vitest';
import type { FileEntry } from '../../src/core/backup-types.js';
import { partsToKeep } from '../../src/core/part-tiling.js';
import { hashHex } from '../../src/repository/hash.js';
import { createContentHasher, partKey, partRanges, partsProblem, partTreeChecksum } from '../../src/repository/stored-parts.js';
import { prng } from '../helpers/random.js';

const MiB = 1024 * 1024;

function bytes(n: number, seed: number): Buffer {
  const next = prng(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

describe('part-tree checksum', () => {
  const content = bytes(5 * MiB + 12345, 7);
  const partSize = 2 * MiB;
  const expected = partTreeChecksum(partRanges(content.length, partSize).map((r) => hashHex(content.subarray(r.offset, r.offset + r.length))));

  it('is the xxh64 of the parts’ xxh64s as hex text, in order', () => {
    const digests = [0, 1, 2].map((i) => hashHex(content.subarray(i * partSize, Math.min(content.length, (i + 1) * partSize))));
    expect(expected).toBe(hashHex(Buffer.from(digests.join(''), 'ascii')));
    expect(expected).not.toBe(partTreeChecksum([...digests].reverse()));
    expect(expected).not.toBe(hashHex(content));
  });

  it('does not depend on how the stream is cut into chunks', () => {
    for (const cut of [1, 4096, 8192 * 3 + 5, MiB, 2 * MiB, 3 * MiB + 1]) {
      const h = createContentHasher({ partSize });
      for (let off = 0; off < content.length; off += cut) h.update(content.subarray(off, off + cut));
      expect(h.digestHex(), `chunks of ${cut}`).toBe(expected);
    }
  });

  it('is plain xxh64 without a part size, and a one-part tree for short content', () => {
    const h = createContentHasher({});
    h.update(content);
    expect(h.digestHex()).toBe(hashHex(content));
    const short = createContentHasher({ partSize });
    short.update(content.subarray(0, 100));
    expect(short.digestHex()).toBe(partTreeChecksum([hashHex(content.subarray(0, 100))]));
    expect(createContentHasher({ partSize }).digestHex()).toBe(partTreeChecksum([hashHex(Buffer.alloc(0))]));
  });

  it('cuts parts at exact multiples of the part size', () => {
    expect(partRanges(4 * MiB, 2 * MiB)).toEqual([{ offset: 0, length: 2 * MiB }, { offset: 2 * MiB, length: 2 * MiB }]);
    expect(partRanges(4 * MiB + 1, 2 * MiB).at(-1)).toEqual({ offset: 4 * MiB, length: 1 });
    expect(partRanges(0, 2 * MiB)).toEqual([]);
    expect(partKey('instances/m/backups/X/data/base/5/16384.1', 3)).toBe('instances/m/backups/X/data/base/5/16384.1.part3');
  });
});

describe('a parted manifest entry', () => {
  const parts = [
    { checksum: '0000000000000001', storedSize: 10, storedChecksum: '00000000000000a1' },
    { checksum: '0000000000000002', storedSize: 20, storedChecksum: '00000000000000a2' },
  ];
  const entry = (over: Partial<FileEntry> = {}): FileEntry => ({
    path: 'base/5/16384',
    kind: 'data',
    mode: 0o600,
    mtimeMs: 0,
    size: 3 * MiB,
    storage: 'full',
    storedSize: 30,
    storedChecksum: partTreeChecksum(parts.map((p) => p.storedChecksum)),
    checksum: partTreeChecksum(parts.map((p) => p.checksum)),
    compressAlg: 'zstd',
    partSize: 2 * MiB,
    parts,
    ...over,
  });

  it('passes when sizes and checksums agree with its parts', () => {
    expect(partsProblem(entry())).toBeUndefined();
  });

  it('is refused when anything disagrees', () => {
    expect(partsProblem(entry({ size: 5 * MiB }))).toMatch(/2 parts, its size needs 3/);
    expect(partsProblem(entry({ storedSize: 31 }))).toMatch(/sum of its parts/);
    expect(partsProblem(entry({ checksum: '0000000000000000' }))).toMatch(/content checksum/);
    expect(partsProblem(entry({ storedChecksum: '0000000000000000' }))).toMatch(/stored checksum/);
    expect(partsProblem(entry({ partSize: 1000 }))).toMatch(/partSize/);
    expect(partsProblem(entry({ size: MiB, parts: parts.slice(0, 1) }))).toMatch(/1 parts/);
  });
});

describe('which parts a copy keeps', () => {
  const P = 100;
  it('keeps every part of a file that kept its size', () => {
    expect(partsToKeep([100, 100, 40], P)).toBe(3);
    expect(partsToKeep([100, 100], P)).toBe(2);
  });
  it('drops the empty parts of a file that shrank', () => {
    expect(partsToKeep([100, 30, 0, 0], P)).toBe(2);
    expect(partsToKeep([100, 0, 0], P)).toBe(1);
    expect(partsToKeep([0, 0], P)).toBe(1);
  });
  it('recopies a file that shrank and grew again between parts', () => {
    expect(partsToKeep([100, 30, 100], P)).toBe('recopy');
    expect(partsToKeep([0, 0, 8], P)).toBe('recopy');
  });
});
