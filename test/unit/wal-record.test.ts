// Decoding of hand-built records: the cases the fixtures do not reach (13/14 image bits, the
// 15+ WAL_LOG database create, top-level xids) and corrupt input, which must throw, not overrun.
import { describe, expect, it } from 'vitest';
import { traitsForMajor } from '../../src/postgres/server-versions.js';
import { crc32c } from '../../src/postgres/wal/crc32c.js';
import { computeRecordCrc, decodeRecord, verifyRecordCrc } from '../../src/postgres/wal/wal-record.js';
import { commitTimestamp, parseXactCompletion, relationChangesWithoutBlocks, restorePointName } from '../../src/postgres/wal/record-kinds.js';

/** Little-endian byte writer for record bodies. */
class Bytes {
  private readonly out: number[] = [];
  u8(n: number): this { this.out.push(n & 0xff); return this; }
  u16(n: number): this { return this.u8(n).u8(n >>> 8); }
  u32(n: number): this { return this.u16(n & 0xffff).u16(n >>> 16); }
  i64(n: bigint): this { const b = Buffer.alloc(8); b.writeBigInt64LE(n); b.forEach((x) => this.out.push(x)); return this; }
  raw(b: Uint8Array): this { b.forEach((x) => this.out.push(x)); return this; }
  get length(): number { return this.out.length; }
  bytes(): Uint8Array { return Uint8Array.from(this.out); }
}

/** A whole record: header (with a correct CRC) + body. */
function record(rmid: number, info: number, body: Uint8Array, xid = 0): Uint8Array {
  const rec = new Bytes().u32(24 + body.length).u32(xid).u32(0x100).u32(0).u8(info).u8(rmid).u16(0).u32(0).raw(body).bytes();
  new DataView(rec.buffer).setUint32(20, computeRecordCrc(rec), true);
  return rec;
}

const T14 = traitsForMajor(14);
const T15 = traitsForMajor(15);
const T18 = traitsForMajor(18);

describe('CRC-32C', () => {
  it('matches the standard check value', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('catches any flipped bit of a record', () => {
    const rec = record(10, 0, new Bytes().u8(255).u8(3).raw(new Uint8Array([1, 2, 3])).bytes());
    expect(() => verifyRecordCrc(rec, 0x1000n)).not.toThrow();
    rec[25]! ^= 1;
    expect(() => verifyRecordCrc(rec, 0x1000n)).toThrow(/checksum/);
  });
});

describe('decodeRecord', () => {
  it('reads block references, images (13/14 vs 15+ bits), SAME_REL and a top-level xid', () => {
    // block 0: rel 1663/5/16384 main blk 7, image of 100 bytes compressed with a hole, data 4 bytes
    // block 1: same rel, fsm fork, blk 2, will init, no data
    const body = new Bytes()
      .u8(252).u32(777)
      .u8(0).u8(0x10 | 0x20).u16(4).u16(100).u16(200).u8(0x01 | 0x02 | 0x04).u16(300).u32(1663).u32(5).u32(16384).u32(7)
      .u8(1).u8(0x80 | 0x40 | 1).u16(0).u32(2)
      .u8(255).u8(3);
    body.raw(new Uint8Array(100)).raw(new Uint8Array(4)).raw(new Uint8Array([9, 8, 7]));
    // 15+: 0x04 is PGLZ (compressed, so hole_length follows) and 0x02 is APPLY
    const rec15 = decodeRecord(record(10, 0, body.bytes(), 42), 0x2000n, 0x2100n, T15);
    expect(rec15.toplevelXid).toBe(777);
    expect(rec15.xid).toBe(42);
    expect([...rec15.mainData]).toEqual([9, 8, 7]);
    expect(rec15.blocks).toEqual([
      { id: 0, spcOid: 1663, dbOid: 5, relNumber: 16384, fork: 0, block: 7, hasImage: true, applyImage: true, willInit: false, hasData: true },
      { id: 1, spcOid: 1663, dbOid: 5, relNumber: 16384, fork: 1, block: 2, hasImage: false, applyImage: false, willInit: true, hasData: false },
    ]);

    // Before 15, 0x02 means compressed and 0x04 apply: the same bits, the same layout.
    const rec14 = decodeRecord(record(10, 0, body.bytes()), 0x2000n, 0x2100n, T14);
    expect(rec14.blocks[0]!.applyImage).toBe(true);

    // An uncompressed image with a hole has no hole_length field: 0x01 | 0x02 reads differently.
    const plain = new Bytes().u8(0).u8(0x10).u16(0).u16(8000).u16(100).u8(0x01 | 0x02).u32(1663).u32(5).u32(1).u32(0).raw(new Uint8Array(8000));
    expect(decodeRecord(record(10, 0, plain.bytes()), 0n, 0n, T15).blocks[0]!.applyImage).toBe(true); // 15: apply
    expect(() => decodeRecord(record(10, 0, plain.bytes()), 0n, 0n, T14)).toThrow(); // 14: "compressed", wants hole_length
  });

  it('reads long main data (id 254)', () => {
    const data = new Uint8Array(300).fill(7);
    const rec = decodeRecord(record(21, 0, new Bytes().u8(254).u32(300).raw(data).bytes()), 0n, 0n, T15);
    expect(rec.mainData.length).toBe(300);
  });

  it.each([
    ['a header cut short', new Bytes().u8(0).u8(0x20).bytes()],
    ['payload shorter than announced', new Bytes().u8(255).u8(10).raw(new Uint8Array(3)).bytes()],
    ['payload longer than announced', new Bytes().u8(255).u8(1).raw(new Uint8Array(3)).bytes()],
    ['an unknown block id', new Bytes().u8(100).u8(0).u16(0).bytes()],
    ['blocks out of order', new Bytes().u8(1).u8(0).u16(0).u32(1).u32(1).u32(1).u32(0).u8(0).u8(0x80).u16(0).u32(0).bytes()],
    ['SAME_REL without a previous relation', new Bytes().u8(0).u8(0x80).u16(0).u32(0).bytes()],
    ['HAS_DATA with no data', new Bytes().u8(0).u8(0x20).u16(0).u32(1).u32(1).u32(1).u32(0).bytes()],
    ['an image without hole shorter than a page', new Bytes().u8(0).u8(0x10).u16(0).u16(100).u16(0).u8(0).u32(1).u32(1).u32(1).u32(0).raw(new Uint8Array(100)).bytes()],
  ])('throws WAL_CORRUPT on %s', (_name, body) => {
    expect(() => decodeRecord(record(10, 0, body), 0x3000n, 0x3100n, T15)).toThrow(expect.objectContaining({ code: 'WAL_CORRUPT', message: expect.stringContaining('0/3000') }));
  });

  it('throws when the buffer does not match xl_tot_len', () => {
    const rec = record(10, 0, new Bytes().u8(255).u8(0).bytes());
    expect(() => decodeRecord(rec.subarray(0, 25), 0n, 0n, T15)).toThrow(expect.objectContaining({ code: 'WAL_CORRUPT' }));
  });
});

describe('record kinds', () => {
  const main = (b: Bytes): Uint8Array => new Bytes().u8(255).u8(b.length).raw(b.bytes()).bytes();
  const dec = (rmid: number, info: number, b: Bytes, traits = T15, xid = 0) => decodeRecord(record(rmid, info, main(b), xid), 0x4000n, 0x4100n, traits);

  it('database create and drop: record types moved in 15', () => {
    const fileCopy = new Bytes().u32(16500).u32(1663).u32(1).u32(1663);
    expect(relationChangesWithoutBlocks(dec(4, 0x00, fileCopy, T14), T14)).toEqual([{ kind: 'database-create', dbOid: 16500, spcOid: 1663, strategy: 'file-copy' }]);
    const drop = new Bytes().u32(16500).u32(2).u32(1663).u32(16600);
    expect(relationChangesWithoutBlocks(dec(4, 0x10, drop, T14), T14)).toEqual([{ kind: 'database-drop', dbOid: 16500, spcOids: [1663, 16600] }]);
    expect(relationChangesWithoutBlocks(dec(4, 0x20, drop, T15), T15)).toEqual([{ kind: 'database-drop', dbOid: 16500, spcOids: [1663, 16600] }]);
    const walLog = new Bytes().u32(16501).u32(1663);
    expect(relationChangesWithoutBlocks(dec(4, 0x10, walLog, T15), T15)).toEqual([{ kind: 'database-create', dbOid: 16501, spcOid: 1663, strategy: 'wal-log' }]);
  });

  it('commit with subtransactions, dropped relations and dropped stats (entry size per major), commit prepared', () => {
    const commit = (statsSize: number) =>
      new Bytes().i64(12345n).u32((1 << 0) | (1 << 1) | (1 << 2) | (1 << 8) | (1 << 4))
        .u32(5).u32(1663) // dbinfo
        .u32(2).u32(901).u32(902) // subxacts
        .u32(1).u32(1663).u32(5).u32(16999) // relfilelocators
        .u32(1).raw(new Uint8Array(statsSize)) // dropped stats
        .u32(900); // twophase xid
    for (const traits of [T15, T18]) {
      const rec = dec(1, 0x30 | 0x80, commit(traits.walXactStatsItemSize), traits, 1000);
      expect(commitTimestamp(rec)).toBe(12345n);
      expect(parseXactCompletion(rec, traits)).toEqual({
        kind: 'commit-prepared', time: 12345n, xid: 900, subxids: [901, 902], droppedRelations: [{ spcOid: 1663, dbOid: 5, relNumber: 16999 }],
      });
    }
  });

  it('a commit without xinfo has a time and nothing else; a huge count is refused', () => {
    const rec = dec(1, 0x00, new Bytes().i64(-5n), T15, 7);
    expect(parseXactCompletion(rec, T15)).toEqual({ kind: 'commit', time: -5n, xid: 7, subxids: [], droppedRelations: [] });
    expect(relationChangesWithoutBlocks(rec, T15)).toBeUndefined();
    const bad = dec(1, 0x80, new Bytes().i64(1n).u32(1 << 2).u32(1000000), T15);
    expect(() => parseXactCompletion(bad, T15)).toThrow(expect.objectContaining({ code: 'WAL_CORRUPT' }));
  });

  it('restore points, smgr records, and special records not understood', () => {
    const name = new Uint8Array(64);
    name.set(new TextEncoder().encode('before-upgrade'));
    expect(restorePointName(dec(0, 0x70, new Bytes().i64(1n).raw(name)))).toBe('before-upgrade');
    expect(restorePointName(dec(0, 0x40, new Bytes()))).toBeUndefined();
    expect(relationChangesWithoutBlocks(dec(2, 0x20 | 0x01, new Bytes().u32(4).u32(1663).u32(5).u32(16400).u32(7)), T15)).toEqual([
      { kind: 'truncate', rel: { spcOid: 1663, dbOid: 5, relNumber: 16400 }, blocks: 4, forks: 7 },
    ]);
    expect(relationChangesWithoutBlocks(dec(5, 0x00 | 0x01, new Bytes()), T15)).toEqual([{ kind: 'special', rmid: 5, info: 1 }]);
    expect(relationChangesWithoutBlocks(dec(10, 0x00, new Bytes()), T15)).toBeUndefined();
  });
});
