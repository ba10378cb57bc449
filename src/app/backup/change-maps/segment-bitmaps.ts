/**
 * A ChangeMap kept as one bitmap per relation segment (bit b of the segment's bitmap: block b of
 * that file, least significant bit first, as ptrack lays them out), plus the relations, and
 * whole databases, that the map cannot vouch for ('all').
 *
 * Bitmaps, not block lists: one bit per block up to the highest changed one, 1/65536 of the data
 * at worst, whatever the number of changes. Block lists are built only when the copy asks for
 * one file. Files are keyed by what they are (tablespace, database, relation, fork, segment), not
 * by their path, so that a tablespace's version directory need not be known.
 */
import type { ChangeMap, FileChanges } from '../../../core/change-map.js';
import { RELSEG_BLOCKS, parseRelationPath, type RelationFile } from '../../../postgres/relation-file.js';

const SEGMENT_BITMAP_BYTES = RELSEG_BLOCKS / 8;

export class SegmentBitmaps implements ChangeMap {
  private readonly bitmaps = new Map<string, Buffer>();
  private readonly whole = new Set<string>();

  constructor(readonly source: ChangeMap['source']) {}

  /** Every segment and fork of the relation (relNumber 0: of every relation of that database and tablespace) is to be read whole. */
  markWhole(spcOid: number, dbOid: number, relNumber: number): void {
    this.whole.add(relationId(spcOid, dbOid, relNumber));
  }

  /** Marks `blocks` (relative to the segment) of one segment file. */
  addBlocks(file: RelationFile, blocks: readonly number[]): void {
    let max = -1;
    for (const b of blocks) if (b > max) max = b;
    if (max < 0) return;
    const bitmap = this.bitmapFor(file, (max >> 3) + 1);
    for (const b of blocks) bitmap[b >> 3] = bitmap[b >> 3]! | (1 << (b & 7));
  }

  /** ORs in a ptrack-style bitmap of one segment file (bit b%8 of byte b/8). */
  addBitmap(file: RelationFile, bitmap: Buffer): void {
    // A segment file holds RELSEG_BLOCKS blocks at most: bits past that are the allowed extra bits.
    let used = Math.min(bitmap.length, SEGMENT_BITMAP_BYTES);
    while (used > 0 && bitmap[used - 1] === 0) used--;
    if (used === 0) return;
    const mine = this.bitmapFor(file, used);
    for (let i = 0; i < used; i++) mine[i] = mine[i]! | bitmap[i]!;
  }

  changes(path: string): FileChanges | undefined {
    const file = parseRelationPath(path);
    // Not a relation file: nothing here speaks for it, so it must be read whole.
    if (file === undefined) return 'all';
    if (this.whole.has(relationId(file.spcOid, file.dbOid, file.relNumber)) || this.whole.has(relationId(file.spcOid, file.dbOid, 0))) return 'all';
    const bitmap = this.bitmaps.get(segmentId(file));
    if (bitmap === undefined) return undefined;
    const blocks: number[] = [];
    for (let i = 0; i < bitmap.length; i++) {
      const byte = bitmap[i]!;
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) blocks.push(i * 8 + bit);
    }
    return blocks;
  }

  /** For reports: how many segment files have changed blocks, and how many blocks in all. */
  stats(): { segments: number; blocks: number; wholeRelations: number } {
    let blocks = 0;
    for (const bitmap of this.bitmaps.values()) for (const byte of bitmap) blocks += popcount(byte);
    return { segments: this.bitmaps.size, blocks, wholeRelations: this.whole.size };
  }

  private bitmapFor(file: RelationFile, bytes: number): Buffer {
    const key = segmentId(file);
    const prior = this.bitmaps.get(key);
    if (prior !== undefined && prior.length >= bytes) return prior;
    const grown = Buffer.alloc(bytes);
    prior?.copy(grown);
    this.bitmaps.set(key, grown);
    return grown;
  }
}

function relationId(spcOid: number, dbOid: number, relNumber: number): string {
  return `${spcOid}/${dbOid}/${relNumber}`;
}

function segmentId(f: RelationFile): string {
  return `${f.spcOid}/${f.dbOid}/${f.relNumber}/${f.fork}/${f.segNo}`;
}

function popcount(byte: number): number {
  let n = 0;
  for (let v = byte; v !== 0; v &= v - 1) n++;
  return n;
}
