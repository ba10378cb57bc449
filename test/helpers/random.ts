// Seeded randomness for tests that draw their cases: a failing run prints its seed and replays.

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from `envName`, or a fresh one; printed either way with how to replay it. */
export function seedFrom(envName: string, label: string): number {
  const given = process.env[envName];
  const seed = given !== undefined && given !== '' ? Number(given) : Date.now() % 2 ** 31;
  console.log(`${label}: seed ${seed} (${envName}=${seed} replays it)`);
  return seed;
}
