/**
 * The recovery settings a restore writes (PostgreSQL 12+: postgresql.auto.conf plus a signal
 * file). Pure: returns the lines; the restore writes them.
 */
export interface RecoveryRequest {
  /** 'immediate': stop as soon as the restored cluster is consistent. */
  target?: 'immediate' | undefined;
  action?: 'promote' | 'pause' | 'shutdown' | undefined;
  restoreCommand?: string | undefined;
}

/** undefined when no recovery configuration is needed (crash recovery from backup_label and pg_wal). */
export function recoveryConfigLines(req: RecoveryRequest): string[] | undefined {
  if (!req.target) return undefined;
  const lines = ['# recovery settings written by pgkeep restore'];
  if (req.restoreCommand) lines.push(`restore_command = ${quoteConfValue(req.restoreCommand)}`);
  lines.push(`recovery_target = ${quoteConfValue(req.target)}`);
  lines.push(`recovery_target_action = ${quoteConfValue(req.action ?? 'promote')}`);
  return lines;
}

/** Quotes a postgresql.conf string value: single quotes doubled. */
export function quoteConfValue(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}
