import { describe, expect, it } from 'vitest';
import { waitingInArchiverOrder } from '../../src/app/archive/archive-batch.js';

describe('waitingInArchiverOrder', () => {
  it('takes .ready files only, history files first, then by name, without the one already pushed', () => {
    const entries = [
      '000000020000000000000005.ready',
      '000000010000000000000004.done',
      '000000010000000000000003.00000028.backup.ready',
      '00000002.history.ready',
      '000000010000000000000003.ready',
      '000000010000000000000004.partial.ready',
      '000000020000000000000004.ready',
      'not-a-wal-file.ready',
      '000000010000000000000002.ready',
      '00000003.history.done',
    ];
    expect(waitingInArchiverOrder(entries, '000000010000000000000002')).toEqual([
      '00000002.history',
      '000000010000000000000003',
      '000000010000000000000003.00000028.backup',
      '000000010000000000000004.partial',
      '000000020000000000000004',
      '000000020000000000000005',
    ]);
  });

  it('gives nothing when nothing else waits', () => {
    expect(waitingInArchiverOrder(['000000010000000000000002.ready', '000000010000000000000001.done'], '000000010000000000000002')).toEqual([]);
  });
});
