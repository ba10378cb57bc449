import { describe, expect, it } from 'vitest';
import {
  RELSEG_BLOCKS,
  absoluteBlockNumber,
  isDataFileForBlockIncremental,
  parseRelationFileName,
  parseRelationPath,
  relationFileName,
  relationKey,
  type RelationFile,
} from '../../src/postgres/relation-file.js';

describe('parseRelationPath', () => {
  const relations: [string, RelationFile][] = [
    ['global/1262', { spcOid: 1664, dbOid: 0, relNumber: 1262, fork: 'main', segNo: 0 }],
    ['global/1262_fsm', { spcOid: 1664, dbOid: 0, relNumber: 1262, fork: 'fsm', segNo: 0 }],
    ['base/16384/2674.1', { spcOid: 1663, dbOid: 16384, relNumber: 2674, fork: 'main', segNo: 1 }],
    ['base/5/1259', { spcOid: 1663, dbOid: 5, relNumber: 1259, fork: 'main', segNo: 0 }],
    ['base/1/16434_vm', { spcOid: 1663, dbOid: 1, relNumber: 16434, fork: 'vm', segNo: 0 }],
    ['base/16384/16500_init', { spcOid: 1663, dbOid: 16384, relNumber: 16500, fork: 'init', segNo: 0 }],
    ['base/16384/4294967295.4294967295', { spcOid: 1663, dbOid: 16384, relNumber: 4294967295, fork: 'main', segNo: 4294967295 }],
    ['pg_tblspc/16400/PG_15_202209061/16384/16401_fsm.2', { spcOid: 16400, dbOid: 16384, relNumber: 16401, fork: 'fsm', segNo: 2 }],
    ['pg_tblspc/16400/PG_17_202406281/5/16401', { spcOid: 16400, dbOid: 5, relNumber: 16401, fork: 'main', segNo: 0 }],
  ];
  for (const [path, rel] of relations) {
    it(`parses ${path}`, () => {
      expect(parseRelationPath(path)).toEqual(rel);
    });
  }

  const notRelations = [
    'global/pg_control',
    'global/pg_filenode.map',
    'global/pg_internal.init',
    'base/16384/pg_filenode.map',
    'base/16384/PG_VERSION',
    'base/16384/pg_internal.init',
    'base/16384/t3_16384',
    'base/16384/t3_16384_fsm.1',
    'base/16384/16384_main', // "main" is never written as a suffix
    'base/16384/16384_fsmx',
    'base/16384/16384.0', // segment 0 has no suffix
    'base/16384/016384', // leading zeros: not PostgreSQL's name for any relation
    'base/16384/16384.01',
    'base/16384/0',
    'base/16384/4294967296', // past uint32
    'base/16384/16384.',
    'base/16384/16384a',
    'base/16384/pgsql_tmp',
    'base/pgsql_tmp/pgsql_tmp123.0',
    'base/abc/16384',
    'base/16384',
    '1262',
    'PG_VERSION',
    'pg_wal/000000010000000000000001',
    'pg_xact/0000',
    'pg_tblspc/16400/PG_15_202209061/16384',
    'pg_tblspc/16400/16384/16401',
    'pg_tblspc/16400/PG_15_202209061/16384/sub/16401',
    'global/sub/1262',
    'base/16384/sub/2674',
    '/base/16384/2674',
    'base//2674',
    '',
  ];
  for (const path of notRelations) {
    it(`rejects ${JSON.stringify(path)}`, () => {
      expect(parseRelationPath(path)).toBeUndefined();
    });
  }
});

describe('relationFileName', () => {
  it('builds back the name of every relation file it parses', () => {
    for (const name of ['2674', '2674.1', '16401_fsm.2', '16401_vm', '16500_init', '16500_init.3', '4294967295.12']) {
      const rel = parseRelationFileName(name);
      expect(rel).toBeDefined();
      expect(relationFileName(rel!)).toBe(name);
    }
  });

  it('omits the main fork and segment 0', () => {
    expect(relationFileName({ spcOid: 1663, dbOid: 5, relNumber: 1259, fork: 'main', segNo: 0 } as RelationFile)).toBe('1259');
  });
});

describe('absoluteBlockNumber', () => {
  it('counts 131072 blocks per segment', () => {
    expect(RELSEG_BLOCKS).toBe(131072);
    expect(absoluteBlockNumber(0, 0)).toBe(0);
    expect(absoluteBlockNumber(0, 131071)).toBe(131071);
    expect(absoluteBlockNumber(1, 100)).toBe(131172);
    expect(absoluteBlockNumber(32767, 131071)).toBe(0xffffffff);
  });
});

describe('isDataFileForBlockIncremental', () => {
  const cases: [string, boolean][] = [
    ['base/5/1259', true],
    ['base/5/1259.3', true],
    ['base/5/16500_init', true],
    ['base/5/1259_fsm', false],
    ['base/5/1259_vm', false],
  ];
  for (const [path, expected] of cases) {
    it(`${path}: ${expected}`, () => {
      expect(isDataFileForBlockIncremental(parseRelationPath(path)!)).toBe(expected);
    });
  }
});

describe('relationKey', () => {
  it('is the same for every segment of one fork and differs between forks, databases and tablespaces', () => {
    const key = (p: string): string => relationKey(parseRelationPath(p)!);
    expect(key('base/16384/2674')).toBe('1663/16384/2674/main');
    expect(key('base/16384/2674.7')).toBe(key('base/16384/2674'));
    expect(key('base/16384/2674_fsm')).not.toBe(key('base/16384/2674'));
    expect(key('base/16385/2674')).not.toBe(key('base/16384/2674'));
    expect(key('pg_tblspc/16400/PG_15_202209061/16384/2674')).toBe('16400/16384/2674/main');
    expect(key('global/1262')).toBe('1664/0/1262/main');
  });
});
