// Loads the real PostgreSQL 15 pages in fixtures/pages/ and what pageinspect said about them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const FIXTURES_DIR = fileURLToPath(new URL('../../fixtures/', import.meta.url));

export interface FixturePage {
  file: string;
  kind: string;
  relPath: string;
  blockInSegment: number;
  absBlockNo: number;
  lsn: string;
  checksum: number;
  flags: number;
  lower: number;
  upper: number;
  special: number;
  bytes: Buffer;
}

interface PagesJson {
  blockSize: number;
  pages: Omit<FixturePage, 'bytes'>[];
}

const json = JSON.parse(readFileSync(join(FIXTURES_DIR, 'pages', 'pages.json'), 'utf8')) as PagesJson;

export const FIXTURE_BLOCK_SIZE = json.blockSize;
export const FIXTURE_PAGES: FixturePage[] = json.pages.map((p) => ({
  ...p,
  bytes: readFileSync(join(FIXTURES_DIR, 'pages', p.file)),
}));
