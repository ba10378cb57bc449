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

/**
 * Writes `DEBUG: <ms> ms <phase>` when PGKEEP_DEBUG is set: milliseconds since the process
 * started (performance.now() counts from there), so that a run's time line shows which step
 * took its time without a profiler. Phases are named by what has just finished.
 */
export function debugPhase(phase: string): void {
  if (debugEnabled()) process.stderr.write(`DEBUG: ${performance.now().toFixed(1)} ms ${phase}\n`);
}
