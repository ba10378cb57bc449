/**
 * Finds, in the WAL after a backup's stop LSN, the record where recovery stops for a time, xid,
 * name or LSN target, the way PostgreSQL decides it (xlogrecovery.c, recoveryStopsBefore/After):
 *
 *   time  the first commit or abort whose time is after the target (at or after it with
 *         --no-recovery-target-inclusive): recovery stops just before it, so it must be read
 *   xid   the commit or abort of that transaction
 *   name  the restore point of that name (pg_create_restore_point)
 *   lsn   the first record starting at or after the target
 *
 * Returns the record's position, or where valid WAL ended without one (the target lies beyond
 * the archive: recovery would end with "recovery ended before configured recovery target was reached").
 */
import type { BackupRecord } from '../../core/backup-types.js';
import type { Lsn } from '../../core/lsn.js';
import type { RecoveryTarget } from '../../core/recovery-settings.js';
import { PG_EPOCH_UNIX_MICROS, parseXactCompletion, restorePointName } from '../../postgres/wal/record-kinds.js';
import { majorOf, traitsForMajor, type WalTraits } from '../../postgres/server-versions.js';
import { readWalRecords } from '../../postgres/wal/wal-reader.js';
import { isPgkeepError } from '../../errors.js';
import type { WalRecord } from '../../postgres/wal/wal-record.js';
import type { SegmentOpener } from '../wal/wal-segment-sources.js';

export type StopTarget = Extract<RecoveryTarget, { kind: 'time' | 'xid' | 'name' | 'lsn' }>;

/**
 * found: the record recovery stops at. Otherwise `lastLsn` is the last record read (undefined:
 * none), and `missingSegNo` the segment the WAL would have continued in when it was not there
 * (else valid WAL simply ended inside the last segment read).
 */
export type Located = { found: true; lsn: Lsn; endLsn: Lsn } | { found: false; lastLsn: Lsn | undefined; missingSegNo: bigint | undefined };

export async function locateTarget(backup: BackupRecord, open: SegmentOpener, tli: number, startLsn: Lsn, target: StopTarget, inclusive: boolean): Promise<Located> {
  const traits = traitsForMajor(majorOf(backup.serverVersionNum));
  const matches = matcher(target, inclusive, traits);
  let missingSegNo: bigint | undefined;
  let lastLsn: Lsn | undefined;
  const records = readWalRecords({
    openSegment: async (segNo) => {
      const s = await open(segNo);
      if (!s) missingSegNo = segNo;
      return s;
    },
    tli,
    segSize: backup.walSegSize,
    // XLOG_BLCKSZ: equal to BLCKSZ in every build pgkeep supports.
    blockSize: backup.blockSize,
    major: traits.major,
    startLsn,
    endLsn: 0xffffffffffffffffn,
    systemIdentifier: BigInt(backup.systemIdentifier),
  });
  try {
    for await (const rec of records) {
      if (matches(rec)) return { found: true, lsn: rec.lsn, endLsn: rec.endLsn };
      lastLsn = rec.lsn;
    }
  } catch (e) {
    if (!(isPgkeepError(e) && e.code === 'WAL_MISSING' && missingSegNo !== undefined)) throw e;
  }
  return { found: false, lastLsn, missingSegNo };
}

function matcher(target: StopTarget, inclusive: boolean, traits: WalTraits): (rec: WalRecord) => boolean {
  switch (target.kind) {
    case 'lsn':
      return (rec) => rec.lsn >= target.lsn;
    case 'name':
      return (rec) => restorePointName(rec) === target.name;
    case 'xid': {
      const xid = Number(target.xid & 0xffffffffn);
      return (rec) => parseXactCompletion(rec, traits)?.xid === xid;
    }
    case 'time': {
      const pgMicros = BigInt(target.time.getTime()) * 1000n - PG_EPOCH_UNIX_MICROS;
      return (rec) => {
        const x = parseXactCompletion(rec, traits);
        return x !== undefined && (inclusive ? x.time > pgMicros : x.time >= pgMicros);
      };
    }
  }
}
