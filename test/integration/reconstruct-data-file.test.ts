import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reconstructDataFile, writeReconstructed, type ChainSource, type ReconstructPlan } from '../../src/app/chain/reconstruct-data-file.js';
import { MAX_OPEN_DELTAS, rebuildInPlace, rebuiltThroughScratch } from '../../src/app/chain/rebuild-in-place.js';
import type { CompressAlg } from '../../src/core/backup-types.js';
import { defaultLevel } from '../../src/repository/codecs.js';
import { PageDeltaWriter } from '../../src/repository/page-delta.js';
import { readBuffers } from '../../src/repository/read-buffer-pool.js';
import { StoredFileWriter } from '../../src/repository/stored-file.js';
import { PosixStore } from '../../src/storage/posix-store.js';
import { prng } from '../helpers/random.js';

const BS = 8192;
const MiB = 1024 * 1024;

/** Page `block` as backup `tag` stored it: tag and block in the first words, a derived fill after. */
function page(tag: number, block: number): Buffer {
  const p = Buffer.alloc(BS, (tag * 13 + block * 7 + 1) & 0xff);
  p.writeUInt32LE(tag, 0);
  p.writeUInt32LE(block, 4);
  return p;
}

/** One backup of the file, described oldest first in a case. */
type Step =
  | { kind: 'full'; blocks: number }
  /** `changed`: ascending blocks this delta stores (all below `blocks`). */
  | { kind: 'delta'; blocks: number; changed: number[] };

interface Case {
  name: string;
  /** Oldest first, as backups are taken. */
  steps: Step[];
  /** Defaults to the newest step's block count. */
  target?: number;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * The reference: replay the backups oldest to newest on an array of pages. Each backup first cuts
 * the file to its block count (truncation), then writes its pages; missing pages are zeros.
 */
function referenceModel(steps: Step[], target: number): Buffer {
  let file: (Buffer | undefined)[] = [];
  steps.forEach((s, tag) => {
    if (s.kind === 'full') {
      file = range(0, s.blocks).map((b) => page(tag, b));
    } else {
      file = file.slice(0, s.blocks);
      for (const b of s.changed) file[b] = page(tag, b);
    }
  });
  const out = Buffer.alloc(target * BS);
  for (let b = 0; b < target; b++) file[b]?.copy(out, b * BS);
  return out;
}

/** Store each step the way a backup would, and return the plan (sources newest first). */
async function storeChain(store: PosixStore, steps: Step[], target: number, algOf: (i: number) => CompressAlg): Promise<ReconstructPlan> {
  const sources: ChainSource[] = [];
  for (const [tag, s] of steps.entries()) {
    const alg = algOf(tag);
    const key = `backups/b${tag}/data/base/5/16384`;
    if (s.kind === 'full') {
      const w = await StoredFileWriter.open(store, key, alg, defaultLevel(alg));
      // Written in uneven pieces, so that content chunks and pages do not line up on purpose.
      const content = Buffer.concat(range(0, s.blocks).map((b) => page(tag, b)));
      for (let off = 0; off < content.length; off += 300_001) await w.write(content.subarray(off, off + 300_001));
      const r = await w.finish();
      sources.unshift({ kind: 'full', key, alg, storedChecksum: r.storedChecksum, blocks: s.blocks });
    } else {
      const w = await PageDeltaWriter.open(store, key, alg, defaultLevel(alg), BS);
      // Contiguous blocks in one call, so runs straddle chunk boundaries as real deltas would.
      for (let i = 0; i < s.changed.length; ) {
        let j = i + 1;
        while (j < s.changed.length && s.changed[j] === (s.changed[j - 1] as number) + 1) j++;
        const first = s.changed[i] as number;
        await w.addPages(first, Buffer.concat(range(first, first + j - i).map((b) => page(tag, b))));
        i = j;
      }
      const r = await w.finish(s.blocks);
      expect(r.pageCount).toBe(s.changed.length);
      sources.unshift({ kind: 'delta', key, alg, storedChecksum: r.storedChecksum, blocks: s.blocks });
    }
  }
  return { blockSize: BS, targetBlocks: target, sources };
}

/** Every chunk copied (the generator reuses its buffer), with the chunk contract checked. */
async function rebuild(store: PosixStore, plan: ReconstructPlan): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of reconstructDataFile(store, plan)) {
    if (chunk.length === 0 || chunk.length % BS !== 0 || chunk.length > MiB) throw new Error(`bad chunk length ${chunk.length}`);
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts);
}

/** rebuildInPlace into a new file beside the store, read back whole; checks the length it returns. */
async function rebuildFile(store: PosixStore, plan: ReconstructPlan, maxOpen: number): Promise<Buffer> {
  const path = join(store.root, `rebuilt-${maxOpen}`);
  const fh = await open(path, 'wx');
  try {
    const n = await rebuildInPlace(store, plan, fh, path, maxOpen);
    expect(n).toBe(plan.targetBlocks * BS);
  } finally {
    await fh.close();
  }
  const got = await readFile(path);
  await rm(path);
  return got;
}

function targetOf(c: Case): number {
  return c.target ?? (c.steps[c.steps.length - 1] as Step).blocks;
}

/** First differing block, for a readable failure. */
function firstDiff(a: Buffer, b: Buffer): string {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let off = 0; off < a.length; off += BS) {
    if (!a.subarray(off, off + BS).equals(b.subarray(off, off + BS))) {
      return `block ${off / BS}: got tag ${a.readUInt32LE(off)} block ${a.readUInt32LE(off + 4)}, want tag ${b.readUInt32LE(off)} block ${b.readUInt32LE(off + 4)}`;
    }
  }
  return 'equal';
}

const overlapping: Step[] = [{ kind: 'full', blocks: 40 }];
for (let d = 1; d <= 10; d++) {
  const blocks = 35 + ((d * 7) % 11);
  overlapping.push({ kind: 'delta', blocks, changed: range((d * 3) % 20, Math.min(blocks, ((d * 3) % 20) + 12)) });
}

const cases: Case[] = [
  { name: 'base only', steps: [{ kind: 'full', blocks: 10 }] },
  { name: 'base + 1 delta changing some blocks', steps: [{ kind: 'full', blocks: 10 }, { kind: 'delta', blocks: 10, changed: [1, 3, 4, 9] }] },
  { name: 'growth beyond the base', steps: [{ kind: 'full', blocks: 5 }, { kind: 'delta', blocks: 12, changed: [2, ...range(5, 12)] }] },
  { name: 'truncation in the newest', steps: [{ kind: 'full', blocks: 10 }, { kind: 'delta', blocks: 4, changed: [1] }] },
  {
    name: 'truncation in a middle delta, then regrowth',
    steps: [
      { kind: 'full', blocks: 10 },
      { kind: 'delta', blocks: 10, changed: [5, 6] },
      { kind: 'delta', blocks: 3, changed: [0] },
      { kind: 'delta', blocks: 10, changed: [8] },
    ],
  },
  { name: '10 deltas touching overlapping blocks', steps: overlapping },
  { name: 'deltas only (file created after the full)', steps: [{ kind: 'delta', blocks: 4, changed: [0, 1, 2, 3] }, { kind: 'delta', blocks: 6, changed: [5] }] },
  {
    name: 'base over 1 MiB, runs straddling chunk boundaries',
    steps: [
      { kind: 'full', blocks: 300 },
      { kind: 'delta', blocks: 300, changed: [...range(120, 141), ...range(250, 271)] },
      { kind: 'delta', blocks: 310, changed: [...range(126, 131), ...range(255, 259), ...range(299, 310)] },
    ],
  },
  { name: 'target past a chunk with no base', steps: [{ kind: 'delta', blocks: 400, changed: [0, ...range(127, 130), 255, 256, 399] }] },
  { name: 'zero-length target', steps: [{ kind: 'full', blocks: 10 }, { kind: 'delta', blocks: 0, changed: [] }] },
  { name: 'no source at all', steps: [], target: 3 },
];

describe('reconstructDataFile', () => {
  let dir: string;
  let store: PosixStore;
  // The base and the deltas are read in lent chunks: a view used after its buffer went back to
  // the pool would show as poisoned bytes against the reference model.
  beforeAll(() => {
    readBuffers.poisonReturned = true;
  });
  afterAll(() => {
    readBuffers.poisonReturned = false;
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgkeep-reconstruct-'));
    store = new PosixStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe.each(['none', 'zstd'] as const)('%s', (alg) => {
    it.each(cases)('$name', async (c) => {
      const target = targetOf(c);
      const plan = await storeChain(store, c.steps, target, () => alg);
      const got = await rebuild(store, plan);
      const want = referenceModel(c.steps, target);
      expect(firstDiff(got, want)).toBe('equal');
    });
  });

  describe.each([1, 2])('rebuildInPlace, %i delta(s) at once', (maxOpen) => {
    it.each(cases)('$name', async (c) => {
      const target = targetOf(c);
      const plan = await storeChain(store, c.steps, target, () => 'zstd');
      expect(firstDiff(await rebuildFile(store, plan, maxOpen), referenceModel(c.steps, target))).toBe('equal');
    });
  });

  it('rebuiltThroughScratch streams the same bytes, and removes its scratch file, also when stopped early', async () => {
    const c = cases.find((x) => x.name.startsWith('10 deltas')) as Case;
    const plan = await storeChain(store, c.steps, targetOf(c), () => 'zstd');
    expect(plan.sources.length - 1).toBeGreaterThan(MAX_OPEN_DELTAS); // rebuilt in two stages
    const scratch = join(dir, 'scratch');
    const parts: Buffer[] = [];
    for await (const chunk of rebuiltThroughScratch(store, plan, scratch)) parts.push(Buffer.from(chunk));
    expect(firstDiff(Buffer.concat(parts), referenceModel(c.steps, targetOf(c)))).toBe('equal');
    expect(existsSync(scratch)).toBe(false);
    const early = rebuiltThroughScratch(store, plan, scratch);
    expect((await early.next()).done).toBe(false);
    expect(existsSync(scratch)).toBe(true);
    await early.return(undefined);
    expect(existsSync(scratch)).toBe(false);
  });

  it('does not bring back blocks cut off by a middle delta', async () => {
    const c = cases.find((x) => x.name.startsWith('truncation in a middle')) as Case;
    const got = await rebuild(store, await storeChain(store, c.steps, 10, () => 'none'));
    const zero = Buffer.alloc(BS);
    for (const b of [3, 4, 5, 6, 7, 9]) expect(got.subarray(b * BS, (b + 1) * BS).equals(zero), `block ${b}`).toBe(true);
    expect(got.readUInt32LE(8 * BS)).toBe(3); // block 8 from the newest (tag 3)
    expect(got.readUInt32LE(0)).toBe(2); // block 0 from the middle delta (tag 2)
  });

  it('writeReconstructed streams the same bytes and counts them', async () => {
    const c = cases.find((x) => x.name.startsWith('base over 1 MiB')) as Case;
    const plan = await storeChain(store, c.steps, 310, () => 'lz4');
    const parts: Buffer[] = [];
    const n = await writeReconstructed(store, plan, async (chunk) => {
      parts.push(Buffer.from(chunk));
    });
    expect(n).toBe(310 * BS);
    expect(firstDiff(Buffer.concat(parts), referenceModel(c.steps, 310))).toBe('equal');
  });

  it('matches the reference model on random chains', { timeout: 600_000 }, async () => {
    const seed = Number(process.env.PGKEEP_TEST_SEED ?? Date.now() % 2 ** 31);
    const rand = prng(seed);
    const int = (n: number): number => Math.floor(rand() * n);
    const algs: CompressAlg[] = ['none', 'zstd', 'lz4', 'gzip'];
    for (let round = 0; round < 200; round++) {
      // Mostly small files (fast); some past a chunk so runs and chunks straddle.
      const maxBlocks = [6, 20, 40, 300][int(4)] as number;
      const steps: Step[] = [];
      const hasBase = rand() < 0.75;
      const n = 1 + int(6);
      for (let i = 0; i < n; i++) {
        const blocks = int(maxBlocks + 1);
        if (i === 0 && hasBase) {
          steps.push({ kind: 'full', blocks });
          continue;
        }
        const density = [0.05, 0.3, 0.9][int(3)] as number;
        steps.push({ kind: 'delta', blocks, changed: range(0, blocks).filter(() => rand() < density) });
      }
      const target = rand() < 0.8 ? (steps[n - 1] as Step).blocks : int(maxBlocks + 1);
      const sub = new PosixStore(join(dir, `r${round}`));
      const plan = await storeChain(sub, steps, target, () => algs[int(algs.length)] as CompressAlg);
      const want = referenceModel(steps, target);
      const got = await rebuild(sub, plan);
      // In place too, streaming one or two deltas at a time and applying the rest one by one.
      const inPlace = await rebuildFile(sub, plan, 1 + int(2));
      const diff = firstDiff(got, want) === 'equal' ? firstDiff(inPlace, want) : firstDiff(got, want);
      if (diff !== 'equal') {
        throw new Error(`seed ${seed} (PGKEEP_TEST_SEED=${seed}), round ${round}: ${diff}\nchain: ${JSON.stringify({ steps, target })}`);
      }
      await rm(join(dir, `r${round}`), { recursive: true, force: true });
    }
  });

  describe('refuses damaged or inconsistent sources', () => {
    it('a delta whose trailer block count differs from the plan', async () => {
      const steps: Step[] = [{ kind: 'full', blocks: 4 }, { kind: 'delta', blocks: 6, changed: [5] }];
      const plan = await storeChain(store, steps, 6, () => 'zstd');
      const d = plan.sources[0] as ChainSource;
      plan.sources[0] = { ...d, blocks: 7 };
      plan.targetBlocks = 7;
      await expect(rebuild(store, plan)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining(d.key) });
    });

    it.each(['none', 'zstd'] as const)('a flipped byte in the base or a delta (%s)', async (alg) => {
      const steps: Step[] = [{ kind: 'full', blocks: 200 }, { kind: 'delta', blocks: 200, changed: range(10, 150) }];
      for (const victim of [0, 1]) {
        const sub = new PosixStore(join(dir, `v${victim}`));
        const plan = await storeChain(sub, steps, 200, () => alg);
        const key = (plan.sources[victim] as ChainSource).key;
        await flipByte(join(sub.root, key), 9000);
        await expect(rebuild(sub, plan)).rejects.toMatchObject({ code: 'BACKUP_CORRUPT', message: expect.stringContaining(key) });
      }
    });

    it('a base shorter or longer than its block count', async () => {
      const plan = await storeChain(store, [{ kind: 'full', blocks: 5 }], 5, () => 'none');
      const base = plan.sources[0] as ChainSource;
      await expect(rebuild(store, { ...plan, sources: [{ ...base, blocks: 6 }], targetBlocks: 6 })).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
      await expect(rebuild(store, { ...plan, sources: [{ ...base, blocks: 4 }], targetBlocks: 4 })).rejects.toMatchObject({ code: 'BACKUP_CORRUPT' });
    });

    it('a plan whose full copy is not the oldest source', async () => {
      const plan = await storeChain(store, [{ kind: 'delta', blocks: 1, changed: [0] }, { kind: 'full', blocks: 1 }], 1, () => 'none');
      await expect(rebuild(store, plan)).rejects.toMatchObject({ code: 'INTERNAL' });
    });
  });

  it('lets a consumer stop early', async () => {
    const plan = await storeChain(store, [{ kind: 'full', blocks: 300 }, { kind: 'delta', blocks: 300, changed: range(100, 200) }], 300, () => 'zstd');
    let seen = 0;
    for await (const chunk of reconstructDataFile(store, plan)) {
      seen += chunk.length;
      break;
    }
    expect(seen).toBe(128 * BS);
  });
});

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = (b[0] as number) ^ 0x5a;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

