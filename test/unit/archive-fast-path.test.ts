// The fast path must never guess: anything it does not fully recognise goes to oclif, which
// owns help and error messages for flags.
import { describe, expect, it } from 'vitest';
import { runArchiveFastPath } from '../../src/cli/archive-fast-path.js';

describe('archive fast path', () => {
  it('leaves other commands, help, unknown flags and missing flags to oclif', async () => {
    const full = ['-B', '/nonexistent', '--instance', 'i', '--wal-file-path', 'p', '--wal-file-name', '000000010000000000000001'];
    expect(await runArchiveFastPath('backup', full, {})).toBeUndefined();
    expect(await runArchiveFastPath('archive-push', ['--help'], {})).toBeUndefined();
    expect(await runArchiveFastPath('archive-push', [...full, '--bogus'], {})).toBeUndefined();
    expect(await runArchiveFastPath('archive-push', full.slice(2), {})).toBeUndefined(); // no repository
    expect(await runArchiveFastPath('archive-get', [...full, '--overwrite'], {})).toBeUndefined();
    // --batch-size: archive-push's only, and only whole numbers from 1 to 1000; oclif words the refusal.
    expect(await runArchiveFastPath('archive-get', [...full, '--batch-size', '4'], {})).toBeUndefined();
    for (const bad of ['0', '1001', '-1', '2.5', 'x', '']) expect(await runArchiveFastPath('archive-push', [...full, '--batch-size', bad], {}), bad).toBeUndefined();
    // --prefetch and --prefetch-fill: archive-get's only, and only whole numbers from 0 to 256.
    expect(await runArchiveFastPath('archive-push', [...full, '--prefetch', '4'], {})).toBeUndefined();
    expect(await runArchiveFastPath('archive-push', [...full, '--prefetch-fill'], {})).toBeUndefined();
    for (const bad of ['257', '-1', '2.5', 'x', '']) expect(await runArchiveFastPath('archive-get', [...full, '--prefetch', bad], {}), bad).toBeUndefined();
  });

  it('takes a valid --prefetch itself', async () => {
    for (const depth of ['0', '256']) {
      const status = await runArchiveFastPath('archive-get', ['--instance', 'i', '--wal-file-path', 'p', '--wal-file-name', '000000010000000000000001', '--prefetch', depth], { PGKEEP_REPO: '/nonexistent/repo' });
      expect(status, depth).toBe(4);
    }
  });

  it('takes a valid --batch-size itself', async () => {
    const status = await runArchiveFastPath('archive-push', ['--instance', 'i', '--wal-file-path', 'p', '--wal-file-name', '000000010000000000000001', '--batch-size', '1000'], { PGKEEP_REPO: '/nonexistent/repo' });
    expect(status).toBe(4);
  });

  it('handles a complete command line itself, with the error format and status of the commands', async () => {
    const status = await runArchiveFastPath('archive-get', ['--instance', 'i', '--wal-file-path', 'p', '--wal-file-name', '000000010000000000000001'], { PGKEEP_REPO: '/nonexistent/repo' });
    expect(status).toBe(4); // REPO_NOT_FOUND: the repository exit status
  });
});
