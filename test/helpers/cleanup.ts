// Leaked servers break CI (they hold ports, shared memory and disk), so every server a test
// starts and every temp dir it makes is recorded here and released when the process ends,
// even when a test failed before its afterAll ran:
//   - on normal exit (process.on('exit'), synchronous: no promise runs there);
//   - on SIGINT/SIGTERM, then the signal is re-raised so the exit status stays honest;
//   - for processes that died by SIGKILL (a vitest worker killed on timeout), the next process
//     that loads these helpers sweeps their leftovers: see sweepLeftovers().
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What the exit hook needs of a running cluster: a synchronous, best-effort stop. */
export interface EmergencyStoppable {
  emergencyStopSync(): void;
}

const runningClusters = new Set<EmergencyStoppable>();
const tempDirs = new Set<string>();
let hookInstalled = false;

/** Every temp dir of these helpers is named `pgkeep-t<pid>-...` so that leftovers can be traced to their owner. */
export const TEMP_PREFIX = 'pgkeep-t';
/** File in a cluster's own temp dir naming its data directory, read by the sweeper. */
export const PGDATA_MARKER = 'pgdata.path';

/** Keeps temp dirs of failed runs for inspection; servers are stopped all the same. */
const keepDirs = (): boolean => process.env['PGKEEP_KEEP_TEST_DIRS'] === '1';

/** Records a started server; the returned function forgets it once it has been stopped. */
export function registerClusterCleanup(cluster: EmergencyStoppable): () => void {
  installExitHook();
  runningClusters.add(cluster);
  return () => runningClusters.delete(cluster);
}

/** Records a temp dir to remove at exit; the returned function forgets it (already removed). */
export function registerTempDir(path: string): () => void {
  installExitHook();
  tempDirs.add(path);
  return () => tempDirs.delete(path);
}

/**
 * Stops the servers and removes the temp dirs this process still holds: the exit hook's work,
 * which test/setup.ts also runs after each test file's own afterAll hooks. vitest ends a fork
 * with SIGTERM and SIGKILLs it a second later, too soon to remove a repository and a few
 * restored data directories, which were then left behind.
 */
export function releaseAll(): void {
  // Servers first: removing a live data directory under a running postmaster makes it
  // PANIC noisily instead of stopping.
  for (const cluster of runningClusters) {
    try {
      cluster.emergencyStopSync();
    } catch {
      // best effort: one stuck server must not keep the others running
    }
  }
  runningClusters.clear();
  if (!keepDirs()) {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  }
  tempDirs.clear();
}

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', releaseAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      releaseAll();
      process.removeListener(signal, onSignal);
      // Only re-raise when nobody else handles it: a runner with its own handler decides.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let swept = false;

/**
 * Stops servers and removes temp dirs left by helper processes that no longer exist (killed
 * with SIGKILL, so their exit hook never ran). Only dirs whose owning pid is dead are touched,
 * so parallel test files and parallel runs are safe. Runs once per process.
 */
export function sweepLeftovers(): void {
  if (swept) return;
  swept = true;
  const base = tmpdir();
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return;
  }
  const orphans = entries.filter((entry) => {
    const match = /^pgkeep-t(\d+)-/.exec(entry);
    return match !== null && Number(match[1]) !== process.pid && !processAlive(Number(match[1]));
  });
  for (const entry of orphans) stopOrphanServer(join(base, entry));
  if (keepDirs()) return;
  for (const entry of orphans) rmSync(join(base, entry), { recursive: true, force: true });
}

function stopOrphanServer(dir: string): void {
  try {
    const pgdata = readFileSync(join(dir, PGDATA_MARKER), 'utf8').trim();
    const pid = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
    // The pid may have been reused since: only signal a process that is a postgres.
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    if (comm === 'postgres' || comm === 'postmaster') process.kill(pid, 'SIGQUIT'); // = pg_ctl stop -m immediate
  } catch {
    // no marker, no pid file, or no such process: nothing is running
  }
}
