import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pgControlVersionToMajors, readControlFileBasics } from '../../src/postgres/pg-control.js';
import { FIXTURES_DIR } from './fixture-pages.js';

interface Expected {
  postgresVersion: number;
  systemIdentifier: string;
  pgControlVersion: number;
  catalogVersionNo: number;
}
const expected = (JSON.parse(readFileSync(join(FIXTURES_DIR, 'pg-control.json'), 'utf8')) as { files: Record<string, Expected> }).files;

describe('readControlFileBasics on real pg_control files', () => {
  it('has fixtures for 15 and 17', () => {
    expect(Object.keys(expected).sort()).toEqual(['pg_control-15.bin', 'pg_control-17.bin']);
  });

  for (const [file, want] of Object.entries(expected)) {
    it(`${file}: the system identifier pg_controldata / pg_control_system() reported`, () => {
      const buf = readFileSync(join(FIXTURES_DIR, file));
      expect(buf.length).toBe(8192);
      const basics = readControlFileBasics(buf);
      expect(basics.systemIdentifier).toBe(BigInt(want.systemIdentifier));
      expect(basics.pgControlVersion).toBe(want.pgControlVersion);
      expect(basics.catalogVersionNo).toBe(want.catalogVersionNo);
      expect(pgControlVersionToMajors(basics.pgControlVersion)).toContain(want.postgresVersion);
    });

    it(`${file}: reads the same from a Buffer at an odd offset in its ArrayBuffer`, () => {
      const backing = new Uint8Array(8192 + 3);
      backing.set(readFileSync(join(FIXTURES_DIR, file)), 3);
      expect(readControlFileBasics(backing.subarray(3)).systemIdentifier).toBe(BigInt(want.systemIdentifier));
    });
  }

  it('system identifiers beyond 2^63 stay unsigned', () => {
    const buf = new Uint8Array(16).fill(0xff);
    expect(readControlFileBasics(buf).systemIdentifier).toBe(0xffffffffffffffffn);
  });

  it('refuses a file too short to hold the identifiers', () => {
    expect(() => readControlFileBasics(new Uint8Array(15))).toThrow(/too short/);
  });
});

describe('pgControlVersionToMajors', () => {
  it('maps the versions of 13 to 18', () => {
    expect(pgControlVersionToMajors(1300)).toEqual([13, 14, 15, 16]);
    expect(pgControlVersionToMajors(1700)).toEqual([17]);
    expect(pgControlVersionToMajors(1800)).toEqual([18]);
    expect(pgControlVersionToMajors(1201)).toEqual([]);
  });
});
