import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

// page-checksum-wasm.ts holds the assembled page-checksum.wat; the script says when it does not.
const SCRIPT = fileURLToPath(new URL('../../scripts/assemble-wasm.js', import.meta.url));
const MODULE = fileURLToPath(new URL('../../src/postgres/page-checksum-wasm.ts', import.meta.url));

const check = (...file: string[]) => execFileSync(process.execPath, [SCRIPT, '--check', ...file], { stdio: 'pipe' });

it('holds what page-checksum.wat assembles to', () => {
  expect(() => check()).not.toThrow();
});

it('is found stale when it differs from the source', async () => {
  // A copy with one byte of the module changed (the committed file stays as it is).
  const scratch = await makeTempDir('wasm');
  const stale = join(scratch, 'page-checksum-wasm.ts');
  writeFileSync(stale, readFileSync(MODULE, 'utf8').replace(/= 'A/, "= 'B"));
  expect(() => check(stale)).toThrow(/is not what page-checksum.wat assembles to/);
  await removeTempDir(scratch);
});
