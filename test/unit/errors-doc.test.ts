// docs/errors.md is the contract scripts rely on: it must list every error code with the exit
// status the code really has.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';

describe('docs/errors.md', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  it.each(Object.entries(ErrorCodes))('documents %s with status %i', (code, status) => {
    expect(doc).toMatch(new RegExp(`^\\| ${code} \\| ${status} \\|`, 'm'));
  });
});
