/**
 * The recovery settings a restore writes (PostgreSQL 12+: postgresql.auto.conf plus
 * recovery.signal, or standby.signal for a standby). Pure: parses and checks the targets,
 * returns the lines.
 */
import { PgkeepError } from '../errors.js';
import { parseLsn, type Lsn } from './lsn.js';

export type RecoveryAction = 'promote' | 'pause' | 'shutdown';

/** What the user asked for; at most one target kind. */
export interface RecoveryRequest {
  /** 'immediate': stop once consistent. 'latest': replay the whole archive. */
  target?: 'immediate' | 'latest' | undefined;
  time?: string | undefined;
  lsn?: string | undefined;
  xid?: string | undefined;
  name?: string | undefined;
  inclusive?: boolean | undefined;
  timeline?: string | undefined;
  action?: RecoveryAction | undefined;
  restoreCommand?: string | undefined;
  /**
   * Restore as a standby (standby.signal): it replays the archive and, given primary_conninfo,
   * streams from its primary, for as long as it runs; it has no recovery target.
   */
  standby?: StandbySettings | undefined;
}

export interface StandbySettings {
  primaryConninfo?: string | undefined;
  primarySlotName?: string | undefined;
}

/** The single target, checked and normalised. */
export type RecoveryTarget =
  | { kind: 'none' }
  | { kind: 'immediate' }
  | { kind: 'latest' }
  | { kind: 'time'; time: Date; text: string }
  | { kind: 'lsn'; lsn: Lsn }
  | { kind: 'xid'; xid: bigint }
  | { kind: 'name'; name: string };

export function parseRecoveryTarget(req: RecoveryRequest): RecoveryTarget {
  const given = [req.target, req.time, req.lsn, req.xid, req.name].filter((v) => v !== undefined);
  if (req.standby && given.length > 0) {
    throw new PgkeepError('INVALID_ARGUMENT', 'a standby follows its primary and has no recovery target', 'drop the --recovery-target option, or restore without --as-standby');
  }
  if (given.length > 1) {
    throw new PgkeepError('INVALID_ARGUMENT', 'more than one recovery target given', 'choose one of --recovery-target, --recovery-target-time, -lsn, -xid or -name');
  }
  if (req.target === 'immediate') return { kind: 'immediate' };
  if (req.target === 'latest') return { kind: 'latest' };
  if (req.time !== undefined) {
    const time = parseTimestamp(req.time);
    if (Number.isNaN(time.getTime())) throw new PgkeepError('INVALID_ARGUMENT', `invalid recovery target time "${req.time}"`, "write a timestamp with its time zone, e.g. '2026-11-21 12:00:00+00'");
    return { kind: 'time', time, text: req.time };
  }
  if (req.lsn !== undefined) return { kind: 'lsn', lsn: parseLsn(req.lsn) };
  if (req.xid !== undefined) {
    if (!/^\d+$/.test(req.xid)) throw new PgkeepError('INVALID_ARGUMENT', `invalid recovery target xid "${req.xid}"`, 'give a transaction id as a number');
    return { kind: 'xid', xid: BigInt(req.xid) };
  }
  if (req.name !== undefined) {
    if (req.name.length === 0 || req.name.length >= 64) throw new PgkeepError('INVALID_ARGUMENT', 'a restore point name has 1 to 63 characters', 'give the name passed to pg_create_restore_point');
    return { kind: 'name', name: req.name };
  }
  return { kind: 'none' };
}

/**
 * A timestamp as PostgreSQL prints and accepts them ('2026-11-21 12:00:00+02', '...+05:30',
 * '...Z', ISO 8601); JavaScript's Date needs the offset as ±HH:MM.
 */
export function parseTimestamp(text: string): Date {
  const normalised = text
    .trim()
    .replace(' ', 'T')
    .replace(/([+-]\d{2})(\d{2})$/, '$1:$2')
    .replace(/([+-]\d{2})$/, '$1:00');
  return new Date(normalised);
}

/**
 * The lines for postgresql.auto.conf, or undefined when the restored directory needs no
 * recovery configuration (a --stream backup without a target: it recovers from pg_wal alone).
 */
export function recoveryConfigLines(req: RecoveryRequest, needsArchive: boolean): string[] | undefined {
  const target = parseRecoveryTarget(req);
  if (target.kind === 'none' && !needsArchive && !req.standby) return undefined;
  const lines = [req.standby ? '# standby settings written by pgkeep restore --as-standby' : '# recovery settings written by pgkeep restore'];
  if (req.restoreCommand) lines.push(`restore_command = ${quoteConfValue(req.restoreCommand)}`);
  if (req.standby?.primaryConninfo !== undefined) lines.push(`primary_conninfo = ${quoteConfValue(req.standby.primaryConninfo)}`);
  if (req.standby?.primarySlotName !== undefined) lines.push(`primary_slot_name = ${quoteConfValue(req.standby.primarySlotName)}`);
  switch (target.kind) {
    case 'immediate':
      lines.push(`recovery_target = 'immediate'`);
      break;
    case 'time':
      lines.push(`recovery_target_time = ${quoteConfValue(postgresTimestamp(target.time))}`);
      break;
    case 'lsn':
      lines.push(`recovery_target_lsn = ${quoteConfValue(req.lsn!)}`);
      break;
    case 'xid':
      lines.push(`recovery_target_xid = ${quoteConfValue(req.xid!)}`);
      break;
    case 'name':
      lines.push(`recovery_target_name = ${quoteConfValue(target.name)}`);
      break;
    default:
      break;
  }
  const hasStopPoint = target.kind === 'immediate' || target.kind === 'time' || target.kind === 'lsn' || target.kind === 'xid' || target.kind === 'name';
  if (hasStopPoint) {
    if (req.inclusive !== undefined && target.kind !== 'immediate' && target.kind !== 'name') lines.push(`recovery_target_inclusive = ${req.inclusive ? 'on' : 'off'}`);
    lines.push(`recovery_target_action = ${quoteConfValue(req.action ?? 'promote')}`);
  }
  if (req.timeline) lines.push(`recovery_target_timeline = ${quoteConfValue(req.timeline)}`);
  return lines;
}

/** The file that puts the restored server into recovery: a standby's stays in it. */
export function recoverySignalFile(req: RecoveryRequest): 'standby.signal' | 'recovery.signal' {
  return req.standby ? 'standby.signal' : 'recovery.signal';
}

/**
 * A timestamp as PostgreSQL's recovery_target_time accepts it, in UTC ('2026-11-21 12:00:00.123+00');
 * its parser refuses ISO 8601's 'T' and 'Z'.
 */
export function postgresTimestamp(d: Date): string {
  return `${d.toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/** Quotes a postgresql.conf string value: single quotes doubled. */
export function quoteConfValue(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}
