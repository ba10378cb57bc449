/**
 * The ByteStore contract as a test suite, run against every backend (posix now; an object store
 * later calls this with its own factory). Backend-specific checks (temp files on disk, modes)
 * live in the backend's own test file.
 */
import { describe, expect, it } from 'vitest';
import type { ByteStore } from '../../src/storage/byte-store.js';
import { isMissingObjectError } from '../../src/storage/byte-store.js';

async function collect(it: AsyncIterable<Buffer>): Promise<{ data: Buffer; chunks: number[] }> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return { data: Buffer.concat(parts), chunks: parts.map((p) => p.length) };
}

export function describeByteStoreContract(name: string, makeStore: () => Promise<{ store: ByteStore; cleanup: () => Promise<void> }>): void {
  describe(`ByteStore contract: ${name}`, () => {
    const withStore = async (fn: (s: ByteStore) => Promise<void>): Promise<void> => {
      const { store, cleanup } = await makeStore();
      try {
        await fn(store);
      } finally {
        await cleanup();
      }
    };

    it('round-trips writeAtomic / read / stat / exists', () =>
      withStore(async (s) => {
        await s.writeAtomic('a/b/c.json', '{"x":1}');
        expect((await s.read('a/b/c.json')).toString()).toBe('{"x":1}');
        expect((await s.stat('a/b/c.json'))?.size).toBe(7);
        expect(await s.exists('a/b/c.json')).toBe(true);
        expect(await s.exists('a/b')).toBe(true);
        expect(await s.exists('a/nope')).toBe(false);
        expect(await s.stat('a/nope')).toBeUndefined();
      }));

    it('replaces an object atomically', () =>
      withStore(async (s) => {
        await s.writeAtomic('k', 'old');
        await s.writeAtomic('k', new Uint8Array([110, 101, 119]));
        expect((await s.read('k')).toString()).toBe('new');
      }));

    it('makes a streamed object visible only on commit', () =>
      withStore(async (s) => {
        const w = await s.openWrite('x/obj');
        await w.write(Buffer.from('hello '));
        await w.write(Buffer.from('world'));
        expect(w.bytesWritten).toBe(11);
        expect(await s.exists('x/obj')).toBe(false);
        expect(await s.list('x')).toEqual([]);
        await w.commit();
        expect((await s.read('x/obj')).toString()).toBe('hello world');
        expect(await s.list('x')).toEqual(['obj']);
      }));

    it('reads zeros appended with writeZeros, between bytes and at the end', () =>
      withStore(async (s) => {
        const w = await s.openWrite('z/obj');
        await w.write(Buffer.from('head'));
        await w.writeZeros(100_000);
        await w.write(Buffer.from('middle'));
        await w.writeZeros(70_000);
        expect(w.bytesWritten).toBe(4 + 100_000 + 6 + 70_000);
        await w.commit();
        const expected = Buffer.concat([Buffer.from('head'), Buffer.alloc(100_000), Buffer.from('middle'), Buffer.alloc(70_000)]);
        expect((await s.read('z/obj')).equals(expected)).toBe(true);
        expect((await s.stat('z/obj'))?.size).toBe(expected.length);
      }));

    it('leaves nothing after abort', () =>
      withStore(async (s) => {
        const w = await s.openWrite('x/obj');
        await w.write(Buffer.from('partial'));
        await w.abort();
        await w.abort();
        expect(await s.exists('x/obj')).toBe(false);
      }));

    it('streams large objects in bounded chunks, with ranges', () =>
      withStore(async (s) => {
        const big = Buffer.alloc(2.5 * 1024 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
        await s.writeAtomic('big', big);
        const all = await collect(s.openRead('big'));
        expect(all.data.equals(big)).toBe(true);
        expect(Math.max(...all.chunks)).toBeLessThanOrEqual(1024 * 1024);
        expect(all.chunks.length).toBe(3);
        const part = await collect(s.openRead('big', { start: 1000, end: 1_500_000 }));
        expect(part.data.equals(big.subarray(1000, 1_500_000))).toBe(true);
        const tail = await collect(s.openRead('big', { start: big.length - 10 }));
        expect(tail.data.equals(big.subarray(big.length - 10))).toBe(true);
        const empty = await collect(s.openRead('big', { start: big.length + 5 }));
        expect(empty.data.length).toBe(0);
      }));

    it('reads objects and ranges into the caller\'s reused buffer', () =>
      withStore(async (s) => {
        const big = Buffer.alloc(2.5 * 1024 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
        await s.writeAtomic('big', big);
        const readWith = async (bufSize: number, range?: { start: number; end?: number }): Promise<{ data: Buffer; reads: number[] }> => {
          const r = await s.openReader('big', range);
          const buf = Buffer.alloc(bufSize);
          const parts: Buffer[] = [];
          const reads: number[] = [];
          try {
            for (;;) {
              const before = r.remaining;
              const n = await r.read(buf);
              expect(r.remaining).toBe(before - n);
              reads.push(n);
              if (n === 0) break;
              parts.push(Buffer.from(buf.subarray(0, n)));
            }
          } finally {
            await r.close();
            await r.close();
          }
          return { data: Buffer.concat(parts), reads };
        };
        const all = await readWith(1024 * 1024);
        expect(all.data.equals(big)).toBe(true);
        // Full buffers until the end: fewer bytes only on the last read, then 0.
        expect(all.reads).toEqual([1024 * 1024, 1024 * 1024, 512 * 1024, 0]);
        const part = await readWith(100_000, { start: 1000, end: 1_500_000 });
        expect(part.data.equals(big.subarray(1000, 1_500_000))).toBe(true);
        const tail = await readWith(7, { start: big.length - 10 });
        expect(tail.data.equals(big.subarray(big.length - 10))).toBe(true);
        expect(tail.reads).toEqual([7, 3, 0]);
        const past = await s.openReader('big', { start: big.length + 5 });
        expect(past.remaining).toBe(0);
        expect(await past.read(Buffer.alloc(16))).toBe(0);
        await past.close();
        const missing = await s.openReader('nope').catch((e: unknown) => e);
        expect(isMissingObjectError(missing)).toBe(true);
      }));

    it('lists direct children sorted, [] for a missing prefix', () =>
      withStore(async (s) => {
        await s.writeAtomic('p/b', '1');
        await s.writeAtomic('p/a', '1');
        await s.writeAtomic('p/c/d', '1');
        expect(await s.list('p')).toEqual(['a', 'b', 'c']);
        expect(await s.list('missing')).toEqual([]);
        expect(await s.list('')).toEqual(['p']);
      }));

    it('removes objects and trees, missing is fine', () =>
      withStore(async (s) => {
        await s.writeAtomic('t/a', '1');
        await s.writeAtomic('t/sub/b', '1');
        await s.remove('t/a');
        await s.remove('t/a');
        expect(await s.exists('t/a')).toBe(false);
        expect(await s.exists('t/sub/b')).toBe(true);
        await s.removeTree('t');
        await s.removeTree('t');
        expect(await s.exists('t')).toBe(false);
      }));

    it('reports a missing object as such', () =>
      withStore(async (s) => {
        const err = await s.read('nope').catch((e: unknown) => e);
        expect(isMissingObjectError(err)).toBe(true);
        const err2 = await collect(s.openRead('nope')).catch((e: unknown) => e);
        expect(isMissingObjectError(err2)).toBe(true);
      }));

    it('refuses keys that could leave the root', () =>
      withStore(async (s) => {
        for (const bad of ['../x', '/abs', 'a//b', 'a/../b', 'a/./b', '']) {
          await expect(s.writeAtomic(bad, 'x')).rejects.toMatchObject({ code: 'INTERNAL' });
        }
        await expect(s.removeTree('')).rejects.toMatchObject({ code: 'INTERNAL' });
      }));
  });
}
