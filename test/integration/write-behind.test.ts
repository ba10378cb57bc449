// A restore's writer (app/restore/write-behind.ts): one write in flight while the next chunk is
// produced, each lent chunk copied first. On real files; the producers lend one buffer and
// overwrite it as soon as they are resumed, as the stored-file reader may.
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { writeBehind } from '../../src/app/restore/write-behind.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;

/** Chunk `i` of `size` bytes: a pattern no other chunk has at any offset. */
function pattern(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let off = 0; off < size; off += 4) b.writeUInt32LE(((i + 1) * 0x9e3779b1 + off) >>> 0, off);
  return b;
}

/** Lends one buffer for every chunk, and poisons it when resumed. Optionally fails after `failAfter` chunks. */
async function* lending(sizes: number[], failAfter?: number): AsyncGenerator<Buffer> {
  const lent = Buffer.alloc(Math.max(...sizes));
  for (let i = 0; i < sizes.length; i++) {
    if (i === failAfter) throw new Error(`producer failed at chunk ${i}`);
    pattern(i, sizes[i]!).copy(lent);
    yield lent.subarray(0, sizes[i]!);
    lent.fill(0xee);
  }
}

describe('writeBehind', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('write-behind');
  });

  it('writes every lent chunk as it was when lent, in order, from the position on', async () => {
    // Larger than a buffer of its own (2 MiB), empty, odd sizes, and more chunks than buffers.
    const sizes = [MiB, MiB, 8192, 0, 3 * 4096 + 12, 2 * MiB, MiB, 4, MiB - 4];
    const path = join(dir, 'f');
    const fh = await open(path, 'w');
    try {
      expect(await writeBehind(fh, lending(sizes), 4096)).toBe(sizes.reduce((a, b) => a + b, 0));
    } finally {
      await fh.close();
    }
    const want = Buffer.concat([Buffer.alloc(4096), ...sizes.map((n, i) => pattern(i, n))]);
    const got = await readFile(path);
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
  });

  it('a producer that fails: the error comes out, and the chunks before it are written in full before it returns', async () => {
    const sizes = [MiB, MiB, MiB, MiB];
    const path = join(dir, 'f');
    const fh = await open(path, 'w');
    try {
      await expect(writeBehind(fh, lending(sizes, 3), 0)).rejects.toThrow('producer failed at chunk 3');
      // No write still running once it has returned: the size is final.
      expect((await stat(path)).size).toBe(3 * MiB);
    } finally {
      await fh.close();
    }
    expect((await readFile(path)).equals(Buffer.concat([0, 1, 2].map((i) => pattern(i, MiB))))).toBe(true);
  });

  it('a write that fails fails the file, and the producer is closed', async () => {
    const path = join(dir, 'f');
    const ro = await open(path, 'w');
    await ro.close();
    const fh = await open(path, 'r'); // writes fail with EBADF
    let closed = false;
    async function* producer(): AsyncGenerator<Buffer> {
      try {
        for (let i = 0; i < 5; i++) yield pattern(i, 8192);
      } finally {
        closed = true;
      }
    }
    try {
      await expect(writeBehind(fh, producer(), 0)).rejects.toMatchObject({ code: 'EBADF' });
    } finally {
      await fh.close();
    }
    expect(closed).toBe(true);
  });
});
