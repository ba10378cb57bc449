/**
 * `--wait[=SECONDS]`: a flag whose value is optional, which oclif cannot express (a string flag
 * always takes the next argument). bin/run.js passes the command line through
 * `normalizeWaitArgv` before oclif sees it: a bare `--wait` becomes `--wait=forever`.
 * `--wait=SECONDS` and `--wait SECONDS` are left as they are.
 */
import { PgkeepError } from '../errors.js';

export const WAIT_FOREVER = 'forever';

/** The commands that have --wait (the first argument is the command id). */
const COMMANDS_WITH_WAIT = new Set(['backup', 'merge', 'delete', 'del-instance', 'restore', 'validate', 'export', 'set-backup']);

/**
 * A bare `--wait` is one that is last, or followed by another option (an argument starting with
 * `-`), or by anything that is not a number of seconds (pgkeep commands take no positional
 * arguments). Arguments after `--` are left alone.
 */
export function normalizeWaitArgv(argv: readonly string[]): string[] {
  const out = [...argv];
  if (!COMMANDS_WITH_WAIT.has(out[0] ?? '')) return out;
  for (let i = 1; i < out.length; i++) {
    if (out[i] === '--') break;
    if (out[i] !== '--wait') continue;
    const next = out[i + 1];
    if (next === undefined || next.startsWith('-') || !SECONDS.test(next)) out[i] = `--wait=${WAIT_FOREVER}`;
    else i++; // its value
  }
  return out;
}

const SECONDS = /^\d+(\.\d+)?$/;

/** The flag's value as seconds: `forever` (a bare --wait) is Infinity. */
export function parseWaitSeconds(value: string): number {
  if (value === WAIT_FOREVER) return Number.POSITIVE_INFINITY;
  if (!SECONDS.test(value)) {
    throw new PgkeepError('INVALID_ARGUMENT', `--wait takes a number of seconds, not "${value}"`, 'give --wait alone to wait without a limit, or --wait=SECONDS');
  }
  return Number(value);
}
