import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { chunkDecoderInto, compressChunk, defaultLevel } from '../../src/repository/codecs.js';

const raw = Buffer.concat([Buffer.from('abc'.repeat(100_000)), randomBytes(1000)]);

/** zstd-napi is optional (codecs.ts): the decoder exists exactly when it is installed. */
function zstdNapiInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('zstd-napi/binding.js');
    return true;
  } catch {
    return false;
  }
}

describe('chunkDecoderInto', () => {
  it('exists for zstd exactly when zstd-napi is installed, never for the other codecs', () => {
    expect(chunkDecoderInto('zstd') !== undefined).toBe(zstdNapiInstalled());
    for (const alg of ['none', 'gzip', 'lz4'] as const) expect(chunkDecoderInto(alg)).toBeUndefined();
  });

  it('decodes into the given buffer, and refuses a wrong length or garbage as BACKUP_CORRUPT without writing past it', async () => {
    const decode = chunkDecoderInto('zstd');
    if (!decode) {
      // Without zstd-napi there is nothing to decode with: the previous test holds that this is expected.
      expect(zstdNapiInstalled()).toBe(false);
      return;
    }
    const packed = await compressChunk('zstd', defaultLevel('zstd'), raw);
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
