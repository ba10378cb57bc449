import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { chunkDecoderInto, chunkEncoderInto, compressChunk, defaultLevel, encodedBound } from '../../src/repository/codecs.js';

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
    const packed = compressChunk(alg, defaultLevel(alg), raw);
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

  it.each(['zstd', 'lz4', 'gzip'] as const)('%s encodes into the given buffer within encodedBound, random bytes included', (alg) => {
    expect(chunkEncoderInto('none', 0)).toBeUndefined();
    const encode = chunkEncoderInto(alg, defaultLevel(alg));
    expect(encode).toBeDefined();
    if (!encode) return;
    const decode = chunkDecoderInto(alg)!;
    for (const input of [raw, randomBytes(1 << 20), Buffer.alloc(0)]) {
      const bound = encodedBound(alg, input.length);
      const into = Buffer.alloc(bound + 16, 0x55);
      const n = encode(input, into);
      expect(n).toBeLessThanOrEqual(bound);
      expect(into.subarray(bound).every((b) => b === 0x55)).toBe(true);
      if (input.length === 0) continue;
      const back = Buffer.alloc(input.length);
      decode(into.subarray(0, n), input.length, back);
      expect(back.equals(input)).toBe(true);
    }
  });
});
