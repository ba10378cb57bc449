/**
 * The one place errors become what the user sees and the exit status: `ERROR: message` and
 * `HINT: hint` on standard error. Used by every oclif command (base-command.ts) and by the
 * archive fast path, which runs without oclif.
 */
import { ExitStatus, isPgkeepError, type ExitStatusValue } from '../errors.js';
import { debugEnabled } from '../debug.js';

export function reportError(err: unknown): ExitStatusValue {
  if (isPgkeepError(err)) {
    process.stderr.write(`ERROR: ${err.message}\n`);
    if (err.hint) process.stderr.write(`HINT: ${err.hint}\n`);
    if (debugEnabled() && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitStatus;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`ERROR: internal error: ${e.message}\n`);
  if (e.stack) process.stderr.write(`${e.stack}\n`);
  return ExitStatus.error;
}
