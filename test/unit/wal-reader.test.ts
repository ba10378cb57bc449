// The WAL reader against real WAL of PostgreSQL 15 and 17 (fixtures/wal/capture.sh): it must see
// the records, xids and block references the server (pg_walinspect) and pg_waldump saw, the
// commit times the server recorded, and stop or fail as it should on damaged input.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../src/core/lsn.js';
import { isPgkeepError } from '../../src/errors.js';
import { traitsForMajor } from '../../src/postgres/server-versions.js';
import { pageHeaderProblem, readPageHeader, readSegmentSystemIdentifier } from '../../src/postgres/wal/wal-page.js';
import { readWalRecords, type ReadWalOptions, type WalReadEnd } from '../../src/postgres/wal/wal-reader.js';
import type { WalRecord } from '../../src/postgres/wal/wal-record.js';
import {
  commitTimestamp,
  isXactCommitOrAbort,
  parseXactCompletion,
  pgTimestampToUnixMicros,
  relationChangesWithoutBlocks,
  restorePointName,
  type RelationChange,
} from '../../src/postgres/wal/record-kinds.js';
import { RMGR_IDS, WAL_FIXTURE_MAJORS, loadWalFixture, parseWaldump, seekableSegmentOpener, segmentOpener, type WalFixture } from './wal-fixtures.js';

/** What the tests keep of a record (its mainData view dies with the next record). */
interface Seen {
  rec: WalRecord;
  commitTime: bigint | undefined;
  restorePoint: string | undefined;
  changes: ReturnType<typeof relationChangesWithoutBlocks>;
  completion: ReturnType<typeof parseXactCompletion>;
}

async function readAll(fx: WalFixture, overrides: Partial<ReadWalOptions> = {}): Promise<{ seen: Seen[]; end: WalReadEnd }> {
  const traits = traitsForMajor(fx.server.major);
  const gen = readWalRecords({
    openSegment: segmentOpener(fx.segments),
    tli: fx.server.tli,
    segSize: fx.server.segSize,
    blockSize: fx.server.blockSize,
    major: fx.server.major,
    startLsn: fx.startLsn,
    endLsn: fx.endLsn,
    systemIdentifier: BigInt(fx.server.systemIdentifier),
    ...overrides,
  });
  const seen: Seen[] = [];
  for (;;) {
    const next = await gen.next();
    if (next.done === true) return { seen, end: next.value };
    const rec = next.value;
    seen.push({
      rec: { ...rec, mainData: new Uint8Array(0) },
      commitTime: commitTimestamp(rec),
      restorePoint: restorePointName(rec),
      changes: relationChangesWithoutBlocks(rec, traits),
      completion: parseXactCompletion(rec, traits),
    });
  }
}

/** The single change of a record, of the kind expected. */
function only<K extends RelationChange['kind']>(changes: RelationChange[], kind: K): Extract<RelationChange, { kind: K }> {
  expect(changes.map((c) => c.kind)).toEqual([kind]);
  return changes[0] as Extract<RelationChange, { kind: K }>;
}

const relPath = (r: { spcOid: number; dbOid: number; relNumber: number }): string =>
  r.spcOid === 1663 ? `base/${r.dbOid}/${r.relNumber}` : `${r.spcOid}/${r.dbOid}/${r.relNumber}`;

describe.each(WAL_FIXTURE_MAJORS)('real WAL of PostgreSQL %i', (major) => {
  const fx = loadWalFixture(major);

  it('is the major the fixture says, with 1 MiB segments', () => {
    expect(Math.floor(fx.server.serverVersionNum / 10000)).toBe(major);
    expect(fx.server.segSize).toBe(1024 * 1024);
  });

  it('reads the records pg_walinspect lists: same LSNs, ends, rmgrs, xids, lengths', async () => {
    const { seen, end } = await readAll(fx);
    const expected = fx.server.records;
    expect(seen.length).toBe(expected.length);
    expect(seen.map((s) => formatLsn(s.rec.lsn))).toEqual(expected.map((r) => r.lsn));
    expect(seen.map((s) => formatLsn(s.rec.endLsn))).toEqual(expected.map((r) => r.end));
    expect(seen.map((s) => s.rec.rmid)).toEqual(expected.map((r) => RMGR_IDS[r.rmgr]));
    expect(seen.map((s) => s.rec.xid)).toEqual(expected.map((r) => r.xid));
    expect(seen.map((s) => s.rec.totalLength)).toEqual(expected.map((r) => r.len));
    expect(end.reason).toBe('end-lsn');
    // The workload has what the reader must handle: a record longer than a segment, FPIs, a switch.
    expect(Math.max(...seen.map((s) => s.rec.totalLength))).toBeGreaterThan(1024 * 1024);
    expect(expected.some((r) => r.type === 'SWITCH')).toBe(true);
  });

  it('finds the commit times the server recorded (track_commit_timestamp)', async () => {
    const { seen } = await readAll(fx);
    const commits = fx.server.commits.filter((c) => c.label.startsWith('commit'));
    expect(commits.length).toBe(3);
    for (const c of commits) {
      const rec = seen.find((s) => s.rec.xid === c.xid && isXactCommitOrAbort(s.rec));
      expect(rec?.completion?.kind).toBe('commit');
      expect(pgTimestampToUnixMicros(rec!.commitTime!)).toBe(BigInt(c.unixMicros!));
    }
    // The rolled-back transaction's xid_log row went with it; its abort record is in the WAL.
    const aborts = fx.server.records.filter((r) => r.rmgr === 'Transaction' && r.type === 'ABORT').map((r) => r.lsn);
    expect(aborts.length).toBeGreaterThan(0);
    expect(seen.filter((s) => s.completion?.kind === 'abort').map((s) => formatLsn(s.rec.lsn))).toEqual(aborts);
  });

  it('reads what the server described of storage, database, transaction and restore point records', async () => {
    const { seen } = await readAll(fx);
    const byLsn = new Map(seen.map((s) => [formatLsn(s.rec.lsn), s]));
    let checked = 0;
    for (const r of fx.server.records) {
      const s = byLsn.get(r.lsn)!;
      const changes = s.changes ?? [];
      if (r.rmgr === 'Storage' && r.type === 'CREATE') {
        const c = only(changes, 'create');
        expect(c.fork).toBe(0);
        expect(r.desc).toBe(relPath(c.rel));
      } else if (r.rmgr === 'Storage' && r.type === 'TRUNCATE') {
        const t = only(changes, 'truncate');
        expect(r.desc).toBe(`${relPath(t.rel)} to ${t.blocks} blocks flags ${t.forks}`);
      } else if (r.rmgr === 'Database' && r.type === 'CREATE_FILE_COPY') {
        const c = only(changes, 'database-create');
        expect(c.strategy).toBe('file-copy');
        expect(r.desc).toMatch(new RegExp(` to ${c.spcOid}/${c.dbOid}$`));
      } else if (r.rmgr === 'Database' && r.type === 'DROP') {
        const c = only(changes, 'database-drop');
        expect(r.desc).toBe(`dir ${c.spcOids.map((spc) => `${spc}/${c.dbOid}`).join(' ')}`);
      } else if (r.rmgr === 'Transaction' && (r.type === 'COMMIT' || r.type === 'ABORT')) {
        const rels = / rels: ([^;]*)/.exec(r.desc ?? '')?.[1]?.split(' ') ?? [];
        expect(s.completion!.droppedRelations.map(relPath)).toEqual(rels);
        expect(changes.map((c) => (c.kind === 'drop' ? relPath(c.rel) : c.kind))).toEqual(rels);
      } else if (r.type === 'RESTORE_POINT') {
        expect(s.restorePoint).toBe('pgkeep-fixture');
        expect(r.desc).toBe('pgkeep-fixture');
      } else {
        continue;
      }
      checked++;
    }
    // create x several, truncate, create/drop database, restore point, commits that drop relations
    expect(checked).toBeGreaterThan(10);
    expect(seen.filter((s) => s.changes?.some((c) => c.kind === 'drop')).length).toBeGreaterThanOrEqual(2);
    expect(seen.filter((s) => s.changes?.some((c) => c.kind === 'truncate')).length).toBe(1);
  });

  it('the first page of each segment names the cluster', () => {
    for (const seg of fx.segments.values()) {
      expect(readSegmentSystemIdentifier(seg.subarray(0, 8192))).toBe(BigInt(fx.server.systemIdentifier));
    }
    expect(readSegmentSystemIdentifier(new Uint8Array(8192))).toBeUndefined();
    expect(readSegmentSystemIdentifier(fx.segments.values().next().value!.subarray(8192, 16384))).toBeUndefined();
  });

  it('page headers: valid where they are, invalid anywhere else or for another major', () => {
    const [segNo, seg] = [...fx.segments][0]!;
    const magic = traitsForMajor(major).walPageMagic;
    const segStart = segNo * BigInt(fx.server.segSize);
    expect(pageHeaderProblem(readPageHeader(seg.subarray(0, 8192)), segStart, magic, fx.server.segSize)).toBeUndefined();
    expect(pageHeaderProblem(readPageHeader(seg.subarray(8192, 16384)), segStart + 8192n, magic, fx.server.segSize)).toBeUndefined();
    expect(pageHeaderProblem(readPageHeader(seg.subarray(8192, 16384)), segStart + 16384n, magic, fx.server.segSize)).toMatch(/unexpected page address/);
    expect(pageHeaderProblem(readPageHeader(seg.subarray(8192, 16384)), segStart + 8192n, 0xd106, fx.server.segSize)).toMatch(/invalid magic/);
    expect(pageHeaderProblem(readPageHeader(new Uint8Array(8192)), segStart + 8192n, magic, fx.server.segSize)).toMatch(/invalid magic/);
  });

  it('refuses to start where there is no valid WAL page', async () => {
    const [segNo, seg] = [...fx.segments][0]!;
    const broken = Buffer.from(seg);
    const startPage = Number(fx.startLsn % BigInt(fx.server.segSize)) & ~8191;
    broken.fill(0, startPage, startPage + 8192);
    await expect(readAll({ ...fx, segments: new Map(fx.segments).set(segNo, broken) })).rejects.toMatchObject({ code: 'WAL_CORRUPT', message: /no valid WAL at the start/ });
  });

  it('refuses segments of another cluster', async () => {
    await expect(readAll(fx, { systemIdentifier: 42n })).rejects.toMatchObject({ code: 'WAL_CORRUPT', message: /another cluster/ });
  });

  it('detects a flipped byte inside a record (CRC-32C)', async () => {
    const { seen } = await readAll(fx);
    const victim = seen.find((s) => s.rec.rmid === RMGR_IDS.Heap && s.rec.totalLength > 100 && s.rec.totalLength < 1000)!.rec;
    const segments = new Map([...fx.segments].map(([k, v]) => [k, Buffer.from(v)]));
    const segNo = victim.lsn / BigInt(fx.server.segSize);
    const at = Number(victim.lsn % BigInt(fx.server.segSize)) + 40;
    segments.get(segNo)![at]! ^= 0x10;
    const e = await readAll({ ...fx, segments }).catch((err: unknown) => err);
    expect(isPgkeepError(e) && e.code).toBe('WAL_CORRUPT');
    expect((e as Error).message).toContain(formatLsn(victim.lsn));
    expect((e as Error).message).toMatch(/checksum/);
  });

  it('ends cleanly where a truncated final segment ends, reporting where', async () => {
    const { seen: all } = await readAll(fx);
    const lastSegNo = [...fx.segments.keys()].reduce((a, b) => (a > b ? a : b));
    // Cut the last segment in the middle of its third record's page.
    const inLast = all.filter((s) => s.rec.lsn / BigInt(fx.server.segSize) === lastSegNo);
    const cutRecord = inLast[2]!.rec;
    const cutAt = Number(cutRecord.lsn % BigInt(fx.server.segSize)) + 10;
    const segments = new Map(fx.segments);
    segments.set(lastSegNo, fx.segments.get(lastSegNo)!.subarray(0, cutAt));
    const { seen, end } = await readAll({ ...fx, segments });
    expect(end.reason).toBe('end-of-wal');
    expect(seen.map((s) => s.rec.lsn)).toEqual(all.filter((s) => s.rec.lsn < cutRecord.lsn - (cutRecord.lsn % 8192n)).map((s) => s.rec.lsn));
    expect(end.detail).toMatch(/ends at offset/);
  });

  it('ends cleanly at zeros and at a recycled page (wrong xlp_pageaddr) past the end of WAL', async () => {
    // The last segment of the fixture is a recycled one: after the valid WAL comes zeros, then
    // the capture kept one stale page of an older segment.
    const { seen: all } = await readAll(fx);
    const { seen, end } = await readAll(fx, { endLsn: 0xffffffffn << 32n });
    expect(seen.length).toBeGreaterThan(all.length); // the shutdown checkpoint after the capture
    expect(end.reason).toBe('end-of-wal');
    expect(end.detail).toMatch(/zeros|unexpected page address/);

    const lastSegNo = [...fx.segments.keys()].reduce((a, b) => (a > b ? a : b));
    const stale = Buffer.from(fx.segments.get(lastSegNo)!);
    const lastLsn = seen[seen.length - 1]!.rec.endLsn;
    const pageStart = Number((lastLsn + 8191n) / 8192n * 8192n % BigInt(fx.server.segSize));
    stale.copy(stale, pageStart, pageStart + 8192, pageStart + 16384); // a page with the wrong address
    const withStale = await readAll({ ...fx, segments: new Map(fx.segments).set(lastSegNo, stale) }, { endLsn: 0xffffffffn << 32n });
    expect(withStale.seen.length).toBe(seen.length);
  });

  it('throws naming the file when a segment in the middle is missing', async () => {
    const segNos = [...fx.segments.keys()].sort((a, b) => (a < b ? -1 : 1));
    const segments = new Map(fx.segments);
    segments.delete(segNos[1]!);
    const name = `00000001${(segNos[1]! / 4096n).toString(16).toUpperCase().padStart(8, '0')}${(segNos[1]! % 4096n).toString(16).toUpperCase().padStart(8, '0')}`;
    await expect(readAll({ ...fx, segments })).rejects.toMatchObject({ code: 'WAL_MISSING', message: new RegExp(name) });
    // Read along a timeline path, the segment is named after the timeline it would come from.
    const onPath = `00000002${name.slice(8)}`;
    await expect(readAll({ ...fx, segments }, { segmentName: (s) => (s === segNos[1] ? onPath : name) })).rejects.toMatchObject({ code: 'WAL_MISSING', message: new RegExp(`WAL segment ${onPath} is missing`) });
  });

  it('starts at any record boundary, and at a page start that continues a record', async () => {
    const { seen: all } = await readAll(fx);
    const mid = all[Math.floor(all.length / 2)]!.rec.lsn;
    const fromMid = await readAll(fx, { startLsn: mid });
    expect(fromMid.seen.map((s) => s.rec.lsn)).toEqual(all.filter((s) => s.rec.lsn >= mid).map((s) => s.rec.lsn));

    // A page in the middle of the record longer than a segment: the first record read is the next one.
    const big = all.find((s) => s.rec.totalLength > 1024 * 1024)!.rec;
    const pageInside = ((big.lsn + 500_000n) / 8192n) * 8192n;
    const fromPage = await readAll(fx, { startLsn: pageInside });
    expect(fromPage.seen[0]!.rec.lsn).toBe(big.endLsn);
    expect(fromPage.seen.length).toBe(all.filter((s) => s.rec.lsn > big.lsn).length);
  });

  it('skips to a start deep in a segment without reading the pages before it when the source can seek', async () => {
    const { seen: all } = await readAll(fx);
    const segSize = BigInt(fx.server.segSize);
    // The record boundary deepest into its segment, and a page start inside a record's continuation.
    const deep = all.map((s) => s.rec.lsn).reduce((a, b) => (b % segSize > a % segSize ? b : a));
    expect(deep % segSize).toBeGreaterThan(65_536n);
    const big = all.find((s) => s.rec.totalLength > 1024 * 1024)!.rec;
    const pageInside = ((big.lsn + 500_000n) / 8192n) * 8192n;
    for (const startLsn of [deep, pageInside]) {
      const served = new Map<bigint, number>();
      const streamed = await readAll(fx, { startLsn });
      const sought = await readAll(fx, { startLsn, openSegment: seekableSegmentOpener(fx.segments, served) });
      expect(sought.seen.map((s) => s.rec.lsn)).toEqual(streamed.seen.map((s) => s.rec.lsn));
      expect(sought.end).toEqual(streamed.end);
      // The first segment: page 0 (its identity is checked) and what follows the start's page, not the pages between.
      const firstSeg = startLsn / segSize;
      const offset = Number(startLsn % segSize);
      expect(served.get(firstSeg)).toBeLessThanOrEqual(65_536 + fx.server.segSize - (offset - (offset % 8192)));
    }
  });

  it('serves the same records whatever the chunk size of the segment stream', async () => {
    const { seen: a } = await readAll(fx);
    const { seen: b } = await readAll(fx, { openSegment: segmentOpener(fx.segments, 1 << 20) });
    const { seen: c } = await readAll(fx, { openSegment: segmentOpener(fx.segments, 777) });
    expect(b.map((s) => s.rec.lsn)).toEqual(a.map((s) => s.rec.lsn));
    expect(c.map((s) => s.rec.lsn)).toEqual(a.map((s) => s.rec.lsn));
  });
});

describe('block references', () => {
  it('PostgreSQL 17: the block references pg_get_wal_block_info lists', async () => {
    const fx = loadWalFixture(17);
    const { seen } = await readAll(fx);
    const mine = seen.flatMap((s) =>
      s.rec.blocks.map((b) => ({ lsn: formatLsn(s.rec.lsn), id: b.id, spc: b.spcOid, db: b.dbOid, rel: b.relNumber, fork: b.fork, block: b.block, fpi: b.hasImage })),
    );
    expect(fx.server.blocks!.length).toBeGreaterThan(100);
    // oid columns come out of json_build_object as strings
    expect(mine).toEqual(fx.server.blocks!.map((b) => ({ ...b, spc: Number(b.spc), db: Number(b.db), rel: Number(b.rel), block: Number(b.block) })));
    expect(mine.some((b) => b.fpi)).toBe(true);
  });

  it('PostgreSQL 15: the records and block references pg_waldump prints', async () => {
    const fx = loadWalFixture(15);
    const dump = parseWaldump(readFileSync(join(fx.dir, 'pg_waldump.txt'), 'utf8'));
    const { seen } = await readAll(fx);
    expect(dump.length).toBe(seen.length);
    let compared = 0;
    dump.forEach((d, i) => {
      const rec = seen[i]!.rec;
      expect({ lsn: rec.lsn, prev: rec.prevLsn, rmid: rec.rmid, xid: rec.xid, len: rec.totalLength }).toEqual({
        lsn: d.lsn, prev: d.prev, rmid: RMGR_IDS[d.rmgr], xid: d.xid, len: d.totalLength,
      });
      if (d.blocks === undefined) return;
      compared++;
      expect(rec.blocks.map((b) => ({ id: b.id, spc: b.spcOid, db: b.dbOid, rel: b.relNumber, fork: b.fork, block: b.block, fpi: b.hasImage }))).toEqual(d.blocks);
    });
    expect(compared).toBeGreaterThan(dump.length - 20);
    // Compressed images (wal_compression on for the UPDATE) carry the extra hole length field.
    expect(seen.some((s) => s.rec.blocks.some((b) => b.hasImage && b.applyImage))).toBe(true);
  });
});

it('LSN helpers agree with the fixture text', () => {
  expect(formatLsn(parseLsn(loadWalFixture(15).server.startLsn))).toBe(loadWalFixture(15).server.startLsn);
});
