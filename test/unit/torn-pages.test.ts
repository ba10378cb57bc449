// Which failing pages a backup may take as torn: those the server could have been writing while
// they were read, whose LSN lies between the backup's start and stop (read-data-file.ts).
import { describe, expect, it } from 'vitest';
import { assertTornPagesBeforeStop, noteTornPage, type PageCheckCounters } from '../../src/app/backup/read-data-file.js';

const counters = (): PageCheckCounters => ({ pagesRead: 0, pagesReread: 0, pagesTornAccepted: 0 });

describe('torn pages', () => {
  it('keeps the page with the highest LSN, from any copier', () => {
    const c = counters();
    noteTornPage(c, undefined);
    expect(c.latestTorn).toBeUndefined();
    noteTornPage(c, { path: 'base/5/1', block: 2, lsn: 0x3000100n });
    noteTornPage(c, { path: 'base/5/2', block: 7, lsn: 0x3000050n });
    expect(c.latestTorn).toEqual({ path: 'base/5/1', block: 2, lsn: 0x3000100n });
    noteTornPage(c, { path: 'base/5/3', block: 0, lsn: 0x1_00000000n });
    expect(c.latestTorn?.path).toBe('base/5/3');
  });

  it('accepts pages up to the stop LSN, and none at all', () => {
    const c = counters();
    expect(() => assertTornPagesBeforeStop(c, 0x3000100n)).not.toThrow();
    noteTornPage(c, { path: 'base/5/1', block: 2, lsn: 0x3000100n });
    expect(() => assertTornPagesBeforeStop(c, 0x3000100n)).not.toThrow();
  });

  it('refuses a page past the stop LSN, naming file, block and both LSNs', () => {
    const c = counters();
    noteTornPage(c, { path: 'base/5/16384', block: 3, lsn: 0x3000101n });
    expect(() => assertTornPagesBeforeStop(c, 0x3000100n)).toThrow(
      expect.objectContaining({
        code: 'PAGE_CORRUPT',
        message: "corrupt page in base/5/16384, block 3 (it fails its checks, and its LSN 0/3000101 is past the backup's stop LSN 0/3000100: no write during the backup made it)",
      }),
    );
  });
});
