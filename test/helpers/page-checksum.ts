// Offline data checksum verification, the equivalent of `pg_checksums --check`, for majors
// whose own pg_checksums is not installed: Debian ships 15 only, the npm builds ship none, and
// pg_checksums refuses a cluster of another major ("cluster is not compatible with this
// version of pg_checksums"). The algorithm is PostgreSQL's (src/include/storage/checksum_impl.h)
// and has not changed since 9.3; the harness test cross-checks it against pg_checksums 15 and
// proves that it catches a corrupted page.
//
// Assumes the default build: BLCKSZ 8192, RELSEG_SIZE 131072 blocks (1 GiB segments), little
// endian. Both hold for the Debian and the npm builds.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

const BLCKSZ = 8192;
const RELSEG_SIZE = 131072;
const N_SUMS = 32;
const FNV_PRIME = 16777619;
const WORDS_PER_PAGE = BLCKSZ / 4;
// prettier-ignore
const CHECKSUM_BASE_OFFSETS = Uint32Array.of(
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
);

/**
 * pg_checksum_page: the checksum a page must carry at `blockNumber` (its number within the
 * relation fork, across segments). `words` is the page as 2048 little-endian uint32.
 */
export function pageChecksum(words: Uint32Array, blockNumber: number): number {
  const sums = Uint32Array.from(CHECKSUM_BASE_OFFSETS);
  for (let i = 0; i < WORDS_PER_PAGE; i += N_SUMS) {
    for (let j = 0; j < N_SUMS; j++) {
      let value = words[i + j] as number;
      // Word 2 holds pd_checksum (low half) and pd_flags: the checksum is computed with
      // pd_checksum taken as zero.
      if (i + j === 2) value &= 0xffff0000;
      const tmp = ((sums[j] as number) ^ value) >>> 0;
      sums[j] = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    }
  }
  // Two rounds of zeroes for additional mixing.
  for (let round = 0; round < 2; round++) {
    for (let j = 0; j < N_SUMS; j++) {
      const tmp = sums[j] as number;
      sums[j] = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    }
  }
  let result = 0;
  for (let j = 0; j < N_SUMS; j++) result ^= sums[j] as number;
  return ((((result ^ blockNumber) >>> 0) % 65535) + 1) & 0xffff;
}

export interface ChecksumFailure {
  file: string;
  block: number;
  expected: number;
  found: number;
}

export interface ChecksumReport {
  filesScanned: number;
  blocksScanned: number;
  failures: ChecksumFailure[];
}

// Relation files only: <relfilenode>[_fork][.segment]. This leaves out what pg_checksums
// skips too: pg_control, pg_filenode.map, pg_internal.init, PG_VERSION, temp relations
// (t<backend>_<relfilenode>) and pgsql_tmp.
const RELATION_FILE = /^\d+(?:_(?:fsm|vm|init))?(?:\.(\d+))?$/;

/** Verifies every page of every relation file of a stopped cluster (base, global, tablespaces). */
export async function verifyDataChecksums(pgdata: string, major: number): Promise<ChecksumReport> {
  const report: ChecksumReport = { filesScanned: 0, blocksScanned: 0, failures: [] };
  await scanDir(join(pgdata, 'global'), report);
  for (const db of await readdir(join(pgdata, 'base'))) await scanDir(join(pgdata, 'base', db), report);
  const tblspc = join(pgdata, 'pg_tblspc');
  for (const oid of await readdir(tblspc).catch(() => [] as string[])) {
    // Each major keeps its files in its own PG_<major>_<catversion> dir of the location.
    for (const versionDir of await readdir(join(tblspc, oid))) {
      if (!versionDir.startsWith(`PG_${major}_`)) continue;
      for (const db of await readdir(join(tblspc, oid, versionDir))) {
        await scanDir(join(tblspc, oid, versionDir, db), report);
      }
    }
  }
  return report;
}

async function scanDir(dir: string, report: ChecksumReport): Promise<void> {
  if (!(await stat(dir)).isDirectory()) return;
  for (const name of await readdir(dir)) {
    const match = RELATION_FILE.exec(name);
    if (match === null) continue;
    const segment = match[1] === undefined ? 0 : Number(match[1]);
    await scanFile(join(dir, name), segment * RELSEG_SIZE, report);
  }
}

async function scanFile(path: string, firstBlock: number, report: ChecksumReport): Promise<void> {
  const pagesPerRead = 128;
  // Buffer.alloc of this size is never taken from the shared pool, so byteOffset is 0 and the
  // Uint32Array view below is aligned.
  const buffer = Buffer.alloc(BLCKSZ * pagesPerRead);
  const handle = await open(path, 'r');
  try {
    report.filesScanned++;
    let block = firstBlock;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      if (bytesRead % BLCKSZ !== 0) {
        throw new Error(`${path}: short read of block ${block + Math.floor(bytesRead / BLCKSZ)}`);
      }
      for (let offset = 0; offset < bytesRead; offset += BLCKSZ, block++) {
        report.blocksScanned++;
        const words = new Uint32Array(buffer.buffer, buffer.byteOffset + offset, WORDS_PER_PAGE);
        // PageIsNew (pd_upper == 0): never written since extension, carries no checksum.
        if (buffer.readUInt16LE(offset + 14) === 0) continue;
        const found = buffer.readUInt16LE(offset + 8);
        const expected = pageChecksum(words, block);
        if (found !== expected) report.failures.push({ file: path, block, expected, found });
      }
    }
  } finally {
    await handle.close();
  }
}
