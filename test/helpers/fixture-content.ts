/**
 * Content of the stored-file fixtures (fixtures/stored-files/), made again here so that a test
 * can compare what it reads back: 1.5 MiB of numbered text lines, then 1 MiB of xorshift32
 * bytes (seed 42), which no codec shrinks. In 1 MiB frames: text, text and noise, noise.
 */
export function storedFileFixtureContent(): Buffer {
  const MiB = 1024 * 1024;
  const out = Buffer.alloc(2.5 * MiB);
  let off = 0;
  for (let i = 0; off < 1.5 * MiB; i++) off += out.write(`row ${i} ${(i * 7919) % 100003}\n`, off, 1.5 * MiB - off, 'latin1');
  let x = 42;
  for (; off < out.length; off++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[off] = x & 0xff;
  }
  return out;
}
