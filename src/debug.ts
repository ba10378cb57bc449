/**
 * `PGKEEP_DEBUG`: lines on stderr for whoever investigates a run, and for tests that check which
 * way a run went (docs/errors.md, "PGKEEP_DEBUG"). Off by default, when stderr carries only
 * INFO, WARNING, ERROR and HINT lines.
 */

export function debugEnabled(): boolean {
  return Boolean(process.env.PGKEEP_DEBUG);
}

/** Writes `DEBUG: <line>` to stderr when PGKEEP_DEBUG is set. */
export function debugLine(line: string): void {
  if (debugEnabled()) process.stderr.write(`DEBUG: ${line}\n`);
}
