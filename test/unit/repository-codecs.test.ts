import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compressChunk, decompressChunk, defaultLevel, validateLevel } from '../../src/repository/codecs.js';
import { createHasher, hashHex } from '../../src/repository/hash.js';

const raw = Buffer.concat([Buffer.from('abc'.repeat(100_000)), randomBytes(1000)]);

describe('codecs', () => {
  it.each(['none', 'gzip', 'lz4', 'zstd'] as const)('%s round-trips a chunk', async (alg) => {
    const packed = compressChunk(alg, defaultLevel(alg), raw);
    if (alg !== 'none') expect(packed.length).toBeLessThan(raw.length / 10);
    expect((await decompressChunk(alg, packed, raw.length)).equals(raw)).toBe(true);
  });

  it.each(['gzip', 'lz4', 'zstd'] as const)('%s refuses a wrong length or garbage as BACKUP_CORRUPT', async (alg) => {
    const packed = compressChunk(alg, defaultLevel(alg), raw);
    await expect(decompressChunk(alg, packed, raw.length - 1)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
    await expect(decompressChunk(alg, randomBytes(100), raw.length)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
  });

  it('validates levels with the valid range in the hint', () => {
    expect(() => validateLevel('zstd', 23)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', hint: 'zstd accepts levels 1 to 22' }));
    expect(() => validateLevel('gzip', 0)).toThrow(expect.objectContaining({ hint: 'gzip accepts levels 1 to 9' }));
    expect(() => validateLevel('gzip', 1.5)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => validateLevel('lz4', 3)).toThrow(expect.objectContaining({ hint: 'lz4 accepts only level 1' }));
    expect(() => validateLevel('none', 1)).toThrow(expect.objectContaining({ hint: 'none accepts only level 0' }));
    for (const alg of ['none', 'gzip', 'lz4', 'zstd'] as const) expect(() => validateLevel(alg, defaultLevel(alg))).not.toThrow();
    expect(() => validateLevel('zstd', 22)).not.toThrow();
  });
});

describe('hash', () => {
  it('gives xxh64 as 16 zero-padded hex digits, streaming or not, with no init call', () => {
    // Reference value of XXH64("", seed 0).
    expect(hashHex(new Uint8Array(0))).toBe('ef46db3751d8e999');
    const h = createHasher();
    h.update(raw.subarray(0, 1000));
    h.update(raw.subarray(1000));
    expect(h.digestHex()).toBe(hashHex(raw));
    expect(hashHex(raw)).toMatch(/^[0-9a-f]{16}$/);
    expect(hashHex(Buffer.from('a'))).not.toBe(hashHex(Buffer.from('b')));
  });
});

describe('zstd levels', () => {
  it('compresses at the level asked for (the package wrapper used to drop it)', async () => {
    const raw = Buffer.from(Array.from({ length: 20000 }, (_, i) => `row ${i} value ${(i * 7919) % 1000} name${i % 97};`).join('\n'));
    const fast = compressChunk('zstd', 1, raw);
    const small = compressChunk('zstd', 9, raw);
    expect(small.length).toBeLessThan(fast.length);
    expect(await decompressChunk('zstd', fast, raw.length)).toEqual(raw);
    expect(await decompressChunk('zstd', small, raw.length)).toEqual(raw);
  });
});
