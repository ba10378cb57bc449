import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { chunkDecoderInto, compressChunk, defaultLevel } from '../../src/repository/codecs.js';

const raw = Buffer.concat([Buffer.from('abc'.repeat(100_000)), randomBytes(1000)]);

describe('chunkDecoderInto', () => {
  it('exists for every codec (zstd-napi a dependency, lz4 in lz4-block.ts, gzip through node:zlib), not for none', () => {
    createRequire(import.meta.url).resolve('zstd-napi/binding.js');
    for (const alg of ['zstd', 'lz4', 'gzip'] as const) expect(chunkDecoderInto(alg)).toBeDefined();
    expect(chunkDecoderInto('none')).toBeUndefined();
  });

  it.each(['zstd', 'lz4', 'gzip'] as const)('%s decodes into the given buffer, and refuses a wrong length or garbage as BACKUP_CORRUPT without writing past it', async (alg) => {
    const decode = chunkDecoderInto(alg);
    expect(decode).toBeDefined();
    if (!decode) return;
    const packed = await compressChunk(alg, defaultLevel(alg), raw);
    const into = Buffer.alloc(raw.length + 16, 0x55);
    decode(packed, raw.length, into);
    expect(into.subarray(0, raw.length).equals(raw)).toBe(true);
    // Shorter than the chunk: refused, and nothing written past the length asked for.
    const small = Buffer.alloc(raw.length, 0x55);
    expect(() => decode(packed, raw.length - 1, small)).toThrow(expect.objectContaining({ code: 'BACKUP_CORRUPT' }));
    expect(small[raw.length - 1]).toBe(0x55);
    expect(() => decode(packed, raw.length + 1, into)).toThrow(expect.objectContaining({ code: 'BACKUP_CORRUPT' }));
    expect(() => decode(randomBytes(100), raw.length, into)).toThrow(expect.objectContaining({ code: 'BACKUP_CORRUPT' }));
  });
});
