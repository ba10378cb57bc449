// The LZ4 block encoder and decoder of lz4 stored files. The decoder must give exactly what
// lz4-napi (which wrote older backups) gives, and fail on a damaged block without ever writing past
// the buffer it was given. The encoder's blocks must decode, by lz4-napi as by ours, keep the
// format's end rules (which lz4's reference decoder enforces) and stay within the bound.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { decodeLz4Block, encodeLz4Block, lz4BlockBound, Lz4BlockError } from '../../src/repository/lz4-block.js';

const lz4 = createRequire(import.meta.url)('lz4-napi') as typeof import('lz4-napi');

/** Deterministic bytes (xorshift32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Data with runs, repeats at every distance, literals and random stretches, as pages hold. */
function mixed(seed: number, length: number): Buffer {
  const next = prng(seed);
  const out = Buffer.alloc(length);
  let at = 0;
  while (at < length) {
    const kind = next() % 4;
    const n = Math.min(length - at, 1 + (next() % (kind === 0 ? 3000 : 300)));
    if (kind === 0) out.fill(next() & 0xff, at, at + n); // a run (overlapping matches at distance 1)
    else if (kind === 1 && at > 0) {
      const distance = 1 + (next() % Math.min(at, 70_000)); // beyond 65535 lz4 cannot refer back
      for (let i = 0; i < n; i++) out[at + i] = out[at + i - distance]!;
    } else for (let i = 0; i < n; i++) out[at + i] = next() & 0xff;
    at += n;
  }
  return out;
}

/** lz4-napi's chunk: u32 LE raw length, then the block. */
function decodeChunk(packed: Buffer, rawLength: number): Buffer {
  const into = Buffer.alloc(rawLength);
  expect(decodeLz4Block(packed, 4, packed.length, into)).toBe(rawLength);
  return into;
}

/** Fixed inputs of the kinds a data directory holds. */
const cases: Record<string, Buffer> = {
  'one byte': Buffer.from('a'),
  'a pattern of 3 bytes': Buffer.from('abc'.repeat(100_000)),
  '1 MiB of zeros': Buffer.alloc(1 << 20),
  '1 MiB of random bytes': randomBytes(1 << 20),
  'text': Buffer.from(Array.from({ length: 20_000 }, (_, i) => `row ${i}: ${'name'.repeat(i % 7)} ${i * 7919}\n`).join('')),
  'pages: headers, zeros, tuples at the end': Buffer.concat(
    Array.from({ length: 16 }, (_, p) => {
      const page = Buffer.alloc(8192);
      page.writeUInt32LE(p * 1000, 0);
      for (let t = 0; t < 40; t++) page.write(`tuple ${p}-${t} ${'x'.repeat(t % 13)}`, 8192 - (t + 1) * 64);
      return page;
    }),
  ),
};

describe('decodeLz4Block', () => {

  it.each(Object.keys(cases))('gives what lz4-napi gives: %s', (name) => {
    const raw = cases[name]!;
    const packed = lz4.compressSync(raw);
    expect(decodeChunk(packed, raw.length).equals(raw)).toBe(true);
  });

  it('gives what lz4-napi gives on 200 mixed chunks of random sizes', () => {
    const next = prng(20261122);
    for (let i = 0; i < 200; i++) {
      const raw = mixed(next(), 1 + (next() % 300_000));
      const packed = lz4.compressSync(raw);
      const got = decodeChunk(packed, raw.length);
      expect(got.equals(raw), `case ${i} (${raw.length} bytes)`).toBe(true);
    }
  });

  it('decodes hand-made blocks: a long literal length, an overlapping match, a long match', () => {
    // Literals 'ab', then a match at distance 2 of 4 + 6 bytes: 'ab' repeated.
    expect(Buffer.from(decodeTo(Buffer.from([0x26, 0x61, 0x62, 0x02, 0x00, 0x10, 0x63]), 13)).toString()).toBe('ababababababc');
    // 15 + 255 + 30 = 300 literals.
    const lits = Buffer.alloc(300, 0x41);
    expect(Buffer.from(decodeTo(Buffer.concat([Buffer.from([0xf0, 0xff, 30]), lits]), 300)).equals(lits)).toBe(true);
    // One literal, then a match at distance 1 of 4 + 15 + 255 + 255 + 1 = 530 bytes, then a literal.
    const block = Buffer.from([0x1f, 0x7a, 0x01, 0x00, 0xff, 0xff, 0x01, 0x10, 0x21]);
    expect(Buffer.from(decodeTo(block, 532)).toString()).toBe(`${'z'.repeat(531)}!`);
  });

  it('fails on a damaged block without writing past the buffer it was given', () => {
    const raw = mixed(7, 200_000);
    const packed = lz4.compressSync(raw).subarray(4);
    // A destination with a guard after it: the decoder gets only the first raw.length bytes.
    const backing = Buffer.alloc(raw.length + 64, 0x5a);
    const into = backing.subarray(0, raw.length);
    const guardIntact = () => backing.subarray(raw.length).every((b) => b === 0x5a);

    // Every cut short gives an error or fewer bytes than the whole, never more.
    for (let cut = 0; cut < packed.length; cut += 97) {
      let n: number | undefined;
      try {
        n = decodeLz4Block(packed, 0, cut, into);
      } catch (e) {
        expect(e).toBeInstanceOf(Lz4BlockError);
      }
      if (n !== undefined) expect(n).toBeLessThan(raw.length);
      expect(guardIntact()).toBe(true);
    }
    // A destination one byte short.
    expect(() => decodeLz4Block(packed, 0, packed.length, into.subarray(0, raw.length - 1))).toThrow(Lz4BlockError);
    // Bytes flipped anywhere, and garbage: decoded or refused, never past the end.
    const next = prng(99);
    for (let i = 0; i < 300; i++) {
      const bad = Buffer.from(packed);
      for (let k = 0; k < 3; k++) {
        const at = next() % bad.length;
        bad[at] = bad[at]! ^ (1 + (next() % 255));
      }
      try {
        expect(decodeLz4Block(bad, 0, bad.length, into)).toBeLessThanOrEqual(raw.length);
      } catch (e) {
        expect(e).toBeInstanceOf(Lz4BlockError);
      }
      expect(guardIntact()).toBe(true);
    }
    for (let i = 0; i < 100; i++) {
      const garbage = randomBytes(1 + (next() % 5000));
      try {
        decodeLz4Block(garbage, 0, garbage.length, into);
      } catch (e) {
        expect(e).toBeInstanceOf(Lz4BlockError);
      }
      expect(guardIntact()).toBe(true);
    }
  });

  it('refuses a match that reaches before the output, an offset of 0 and an empty block', () => {
    expect(() => decodeTo(Buffer.from([0x10, 0x61, 0x02, 0x00, 0x10, 0x62]), 100)).toThrow(/offset 2 points before the start/);
    expect(() => decodeTo(Buffer.from([0x10, 0x61, 0x00, 0x00, 0x10, 0x62]), 100)).toThrow(/offset 0/);
    expect(() => decodeTo(Buffer.alloc(0), 100)).toThrow(/empty block/);
  });
});

describe('encodeLz4Block', () => {
  /** Our chunk: the u32 LE raw length, then our block, as lz4-napi's `compress` lays it out. */
  function encodeChunk(raw: Buffer): Buffer {
    const out = Buffer.alloc(4 + lz4BlockBound(raw.length));
    out.writeUInt32LE(raw.length, 0);
    const n = encodeLz4Block(raw, out, 4);
    expect(n).toBeLessThanOrEqual(lz4BlockBound(raw.length));
    return out.subarray(0, 4 + n);
  }

  /**
   * The format's end rules, which lz4's reference decoder (LZ4_decompress_safe) relies on: the
   * last sequence is literals only, at least 5 of them, and the last match starts at least 12
   * bytes before the end (for blocks of 13 bytes or more).
   */
  function expectEndRules(block: Uint8Array, rawLength: number): void {
    let s = 0;
    let d = 0;
    let lastMatchStart = -1;
    let lastLiterals: number;
    for (;;) {
      const token = block[s++]!;
      let literals = token >>> 4;
      if (literals === 15) for (let b = 255; b === 255; literals += b) b = block[s++]!;
      s += literals;
      d += literals;
      lastLiterals = literals;
      if (s === block.length) break;
      s += 2;
      let match = token & 15;
      if (match === 15) for (let b = 255; b === 255; match += b) b = block[s++]!;
      lastMatchStart = d;
      d += match + 4;
    }
    expect(d).toBe(rawLength);
    if (rawLength < 13) expect(lastMatchStart).toBe(-1);
    else {
      expect(lastLiterals).toBeGreaterThanOrEqual(5);
      expect(lastMatchStart).toBeLessThanOrEqual(rawLength - 12);
    }
  }

  function expectRoundTrip(raw: Buffer, what: string): Buffer {
    const chunk = encodeChunk(raw);
    expect(lz4.uncompressSync(chunk).equals(raw), `lz4-napi decodes ${what}`).toBe(true);
    expect(decodeChunk(chunk, raw.length).equals(raw), `our decoder decodes ${what}`).toBe(true);
    expectEndRules(chunk.subarray(4), raw.length);
    return chunk;
  }

  it('encodes every length from 0 to 300 bytes of repeats and of random bytes', () => {
    const next = prng(3);
    for (let n = 0; n <= 300; n++) {
      expectRoundTrip(Buffer.from('abcab'.repeat(61).slice(0, n)), `${n} bytes of a repeat`);
      expectRoundTrip(Buffer.from(Array.from({ length: n }, () => next() & 0xff)), `${n} random bytes`);
    }
  });

  it('compresses what compresses about as well as lz4-napi, and stays within the bound otherwise', () => {
    const zeros = expectRoundTrip(Buffer.alloc(1 << 20), '1 MiB of zeros');
    expect(zeros.length).toBeLessThan(lz4.compressSync(Buffer.alloc(1 << 20)).length * 2);
    const text = cases.text!;
    expect(expectRoundTrip(text, 'text').length).toBeLessThan(lz4.compressSync(text).length * 1.25);
    const random = randomBytes(1 << 20);
    expect(expectRoundTrip(random, 'random bytes').length - 4).toBeLessThanOrEqual(lz4BlockBound(random.length));
  });

  it('round-trips 200 mixed chunks of random sizes, matches at every distance up to and past 64 KiB', () => {
    const next = prng(11);
    for (let i = 0; i < 200; i++) expectRoundTrip(mixed(next(), 1 + (next() % 300_000)), `case ${i}`);
  });

  it('encodes at an offset into the buffer, leaving what comes before and after alone', () => {
    const raw = mixed(5, 50_000);
    const dst = Buffer.alloc(100 + lz4BlockBound(raw.length) + 100, 0x77);
    const n = encodeLz4Block(raw, dst, 100);
    expect(dst.subarray(0, 100).every((b) => b === 0x77)).toBe(true);
    expect(dst.subarray(100 + n).every((b) => b === 0x77)).toBe(true);
    const back = Buffer.alloc(raw.length);
    expect(decodeLz4Block(dst, 100, 100 + n, back)).toBe(raw.length);
    expect(back.equals(raw)).toBe(true);
  });
});

function decodeTo(block: Buffer, capacity: number): Uint8Array {
  const dst = new Uint8Array(capacity);
  return dst.subarray(0, decodeLz4Block(block, 0, block.length, dst));
}
