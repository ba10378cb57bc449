// Loads the real WAL captured by fixtures/wal/capture.sh: gzip-compressed 1 MiB segments of a
// PostgreSQL 15 and a 17 cluster, and what the server (pg_walinspect) and pg_waldump said.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseLsn, parseWalFileName } from '../../src/core/lsn.js';
import { FIXTURES_DIR } from './fixture-pages.js';
import type { SeekableSegment } from '../../src/postgres/wal/segment-pages.js';

export interface ServerRecord {
  lsn: string;
  end: string;
  xid: number;
  rmgr: string;
  type: string;
  len: number;
  desc?: string;
}
export interface ServerBlock {
  lsn: string;
  id: number;
  spc: number;
  db: number;
  rel: number;
  fork: number;
  block: number;
  fpi: boolean;
}
export interface ServerJson {
  major: number;
  serverVersionNum: number;
  systemIdentifier: string;
  segSize: number;
  blockSize: number;
  tli: number;
  startLsn: string;
  endLsn: string;
  commits: { label: string; xid: number; unixMicros: number | null }[];
  records: ServerRecord[];
  blocks: ServerBlock[] | null;
}

export interface WalFixture {
  dir: string;
  server: ServerJson;
  startLsn: bigint;
  endLsn: bigint;
  /** Decompressed segments by segment number. */
  segments: Map<bigint, Buffer>;
}

export const WAL_FIXTURE_MAJORS = [15, 17] as const;

export function loadWalFixture(major: number): WalFixture {
  const dir = join(FIXTURES_DIR, 'wal', `pg${major}`);
  const server = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as ServerJson;
  const segments = new Map<bigint, Buffer>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.gz'))) {
    segments.set(parseWalFileName(file.slice(0, 24), server.segSize).segNo, gunzipSync(readFileSync(join(dir, file))));
  }
  return { dir, server, startLsn: parseLsn(server.startLsn), endLsn: parseLsn(server.endLsn), segments };
}

/** openSegment over in-memory segments, served in chunks of an awkward size to exercise page assembly. */
export function segmentOpener(segments: Map<bigint, Buffer>, chunkSize = 100_003) {
  return async (segNo: bigint): Promise<AsyncIterable<Buffer> | undefined> => {
    const seg = segments.get(segNo);
    if (seg === undefined) return undefined;
    return (async function* () {
      for (let i = 0; i < seg.length; i += chunkSize) yield seg.subarray(i, i + chunkSize);
    })();
  };
}

/**
 * Like segmentOpener, but each segment can seek (a SeekableSegment, as a plain file is read), and
 * `served` counts the bytes each segment handed out: what the reader skipped was never served.
 */
export function seekableSegmentOpener(segments: Map<bigint, Buffer>, served: Map<bigint, number>, chunkSize = 65_536) {
  return async (segNo: bigint): Promise<SeekableSegment | undefined> => {
    const seg = segments.get(segNo);
    if (seg === undefined) return undefined;
    let position = 0;
    return {
      seekTo(offset: number) {
        position = offset;
      },
      [Symbol.asyncIterator]: async function* () {
        while (position < seg.length) {
          const chunk = seg.subarray(position, position + chunkSize);
          position += chunk.length;
          served.set(segNo, (served.get(segNo) ?? 0) + chunk.length);
          yield chunk;
        }
      },
    };
  };
}

/** Resource manager ids by the names pg_waldump and pg_walinspect print (rmgrlist.h order). */
export const RMGR_IDS: Record<string, number> = {
  XLOG: 0, Transaction: 1, Storage: 2, CLOG: 3, Database: 4, Tablespace: 5, MultiXact: 6, RelMap: 7, Standby: 8,
  Heap2: 9, Heap: 10, Btree: 11, Hash: 12, Gin: 13, Gist: 14, Sequence: 15, SPGist: 16, BRIN: 17, CommitTs: 18,
  ReplicationOrigin: 19, Generic: 20, LogicalMessage: 21,
};

export interface WaldumpLine {
  rmgr: string;
  xid: number;
  lsn: bigint;
  prev: bigint;
  totalLength: number;
  /** Block references; undefined when the line was cut short at capture (long descriptions). */
  blocks: { id: number; spc: number; db: number; rel: number; fork: number; block: number; fpi: boolean }[] | undefined;
}

const FORKS: Record<string, number> = { main: 0, fsm: 1, vm: 2, init: 3 };

/** pg_waldump's default text output, one record a line. */
export function parseWaldump(text: string): WaldumpLine[] {
  const out: WaldumpLine[] = [];
  const line = /^rmgr: (\w+)\s+len \(rec\/tot\):\s+\d+\/\s*(\d+), tx:\s+(\d+), lsn: ([0-9A-F]+\/[0-9A-F]+), prev ([0-9A-F]+\/[0-9A-F]+), desc: (.*)$/;
  for (const l of text.split('\n')) {
    const m = line.exec(l);
    if (!m) continue;
    const blocks = [...m[6]!.matchAll(/blkref #(\d+): rel (\d+)\/(\d+)\/(\d+)(?: fork (\w+))? blk (\d+)( FPW)?/g)].map((b) => ({
      id: Number(b[1]), spc: Number(b[2]), db: Number(b[3]), rel: Number(b[4]), fork: FORKS[b[5] ?? 'main']!, block: Number(b[6]), fpi: b[7] !== undefined,
    }));
    out.push({
      rmgr: m[1]!, totalLength: Number(m[2]), xid: Number(m[3]), lsn: parseLsn(m[4]!), prev: parseLsn(m[5]!),
      blocks: l.length >= 400 ? undefined : blocks,
    });
  }
  return out;
}
