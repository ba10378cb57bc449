// Hashing needs initHashing() first (src/repository/hash.ts: no top-level await, for the bundle's
// code cache). A way into pgkeep that forgot it must fail loudly, never hash wrongly.
import { describe, expect, it, vi } from 'vitest';

describe('hashing before and after initHashing()', () => {
  it('refuses to hash before the module is ready, then gives xxh64', async () => {
    vi.resetModules(); // a fresh copy of the module: test/setup.ts initialised the shared one
    const hash = await import('../../src/repository/hash.js');
    const abc = new TextEncoder().encode('abc');
    expect(() => hash.hashHex(abc)).toThrow(expect.objectContaining({ code: 'INTERNAL', message: expect.stringContaining('initHashing') }));
    expect(() => hash.createHasher()).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    await hash.initHashing();
    // xxh64("abc", seed 0), from the xxHash reference implementation's test vectors.
    expect(hash.hashHex(abc)).toBe('44bc2cf5ad770999');
    const h = hash.createHasher();
    h.update(abc.subarray(0, 1));
    h.update(abc.subarray(1));
    expect(h.digestHex()).toBe('44bc2cf5ad770999');
  });
});
