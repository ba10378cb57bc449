/**
 * `set-backup`: pin a backup (retention keeps it, and its ancestors, until its expire time) and
 * set its note. The record is rewritten in the repository first (backup.json is the truth, and
 * `catalog rebuild` reads it), then in the catalog, under the instance's exclusive lock so that
 * a merge or delete never races the rewrite.
 */
import type { BackupRecord } from '../../core/backup-types.js';
import { recoveryPointOf } from '../../core/retention.js';
import { PgkeepError } from '../../errors.js';
import { readBackupControl } from '../../repository/backup-control.js';
import { lockInstance } from '../instance-locking.js';
import { saveBackup, type RepoContext } from '../repo-context.js';

export interface PinRequest {
  instance: string;
  id: string;
  /** --ttl in seconds: pinned until the backup's recovery point plus this; 0 unpins. */
  ttlSeconds?: number | undefined;
  /** --expire-time: pinned until then. */
  expireTime?: Date | undefined;
  /** --note: the new note; '' clears it. */
  note?: string | undefined;
  now?: Date;
  /** --wait: seconds to wait for a merge or delete of the instance to finish (Infinity: no limit). */
  waitSeconds?: number | undefined;
}

const UNITS: Record<string, number> = { '': 1, s: 1, sec: 1, min: 60, h: 3600, d: 86400 };

/** `--ttl`: a whole number with an optional unit s, min, h or d (seconds without one). */
export function parseTtl(text: string): number {
  const m = /^(\d+)\s*(s|sec|min|h|d)?$/.exec(text.trim());
  if (!m || !Number.isSafeInteger(Number(m[1]))) {
    throw new PgkeepError('INVALID_ARGUMENT', `invalid --ttl "${text}"`, 'give a whole number with a unit s, min, h or d, e.g. --ttl 30d (--ttl 0 unpins)');
  }
  return Number(m[1]) * UNITS[m[2] ?? '']!;
}

/** `--expire-time`: an ISO 8601 time or "YYYY-MM-DD HH:MM:SS[+TZ]" (UTC without a zone). */
export function parseExpireTime(text: string): Date {
  const t = text.trim().replace(' ', 'T');
  let iso = t;
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) iso = `${t}T00:00:00Z`;
  else if (/T.*[+-]\d{2}$/.test(t)) iso = `${t}:00`; // "+00", as PostgreSQL prints it
  else if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(t)) iso = `${t}Z`;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    throw new PgkeepError('INVALID_ARGUMENT', `invalid --expire-time "${text}"`, "give a time like '2027-01-31 12:00:00+00'");
  }
  return d;
}

export async function setBackupAttributes(ctx: RepoContext, req: PinRequest): Promise<BackupRecord> {
  if (req.ttlSeconds !== undefined && req.expireTime !== undefined) {
    throw new PgkeepError('INVALID_ARGUMENT', '--ttl and --expire-time both say when the pin ends', 'give one of them');
  }
  if (req.ttlSeconds === undefined && req.expireTime === undefined && req.note === undefined) {
    throw new PgkeepError('INVALID_ARGUMENT', 'nothing to set', 'give --ttl, --expire-time or --note');
  }
  const now = req.now ?? new Date();
  if (req.expireTime !== undefined && req.expireTime.getTime() <= now.getTime()) {
    throw new PgkeepError('INVALID_ARGUMENT', `expire time ${req.expireTime.toISOString()} is in the past`, 'give a later time, or unpin with --ttl 0');
  }
  ctx.catalog.requireBackup(req.instance, req.id);
  const lock = await lockInstance(ctx, req.instance, 'set-backup', req.waitSeconds);
  try {
    // The repository is the truth: a merge may have rewritten backup.json since the catalog row.
    const record = await readBackupControl(ctx.store, req.instance, req.id);
    if (record.status === 'DELETING') {
      throw new PgkeepError('INVALID_ARGUMENT', `backup ${req.id} is being deleted`, `finish the deletion with \`pgkeep delete --instance ${req.instance} -i ${req.id}\``);
    }
    const next: BackupRecord = { ...record };
    if (req.ttlSeconds !== undefined) {
      // As pg_probackup does: the pin runs from the moment the backup recovers to.
      next.expireTime = req.ttlSeconds === 0 ? null : new Date(recoveryPointOf(record).getTime() + req.ttlSeconds * 1000);
      if (req.ttlSeconds === 0 && !record.expireTime) ctx.reporter.warn(`backup ${req.id} is not pinned: nothing to unpin`);
    }
    if (req.expireTime !== undefined) next.expireTime = req.expireTime;
    if (req.note !== undefined) next.note = req.note === '' ? null : req.note;
    await saveBackup(ctx, next);
    return next;
  } finally {
    await lock.release();
  }
}
