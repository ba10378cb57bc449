// Timing for the benchmark scripts: wall-clock seconds and peak RSS of a command under GNU time,
// medians over repeats, sizes on disk, and a warm or cold page cache.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { postgresOsUser } from './throwaway-cluster.js';

/** GNU time (`/usr/bin/time -f`), installed from Debian's packages when missing. */
export function ensureGnuTime() {
  if (existsSync('/usr/bin/time')) return;
  console.error('GNU time is needed for peak RSS: installing it (apt-get install -y time)');
  execFileSync('apt-get', ['install', '-y', '-q', 'time'], { stdio: 'inherit' });
}

/**
 * Runs a command under GNU time as the postgres OS user (when we are root, as every tool runs in
 * production); returns seconds and peak RSS in MB. GNU time reports the largest resident set of
 * the command or of any one of its waited-for children, not their sum: for a tool that works in
 * several processes (pgbackrest with process-max) it is the largest process.
 */
export function measure(cmd, args, { env = {}, asRoot = false } = {}) {
  const user = asRoot ? undefined : postgresOsUser();
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    ...(user ?? {}),
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const last = r.stderr.trim().split('\n').pop() ?? '';
  const [seconds, kb] = last.split(' ').map(Number);
  if (!Number.isFinite(seconds) || !Number.isFinite(kb)) throw new Error(`cannot read GNU time's output: ${last}`);
  return { seconds, rssMb: kb / 1024, stdout: r.stdout, stderr: r.stderr };
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Runs `once(i)` `repeat` times (each returns a measure() result, perhaps with more fields);
 * returns the run with the median time, its peak RSS replaced by the largest of all runs.
 * `before(i)` runs untimed ahead of each (clean-up, warm cache).
 */
export function repeated(repeat, once, before = () => {}) {
  const runs = [];
  for (let i = 0; i < repeat; i++) {
    before(i);
    runs.push(once(i));
  }
  return medianRun(runs);
}

/**
 * Of several measure() results, the run with the median time (with an odd count, one real run),
 * its peak RSS replaced by the largest of all; `runs` is how many there were.
 */
export function medianRun(runs) {
  const m = median(runs.map((r) => r.seconds));
  const pick = runs.reduce((best, r) => (Math.abs(r.seconds - m) < Math.abs(best.seconds - m) ? r : best));
  return { ...pick, seconds: m, rssMb: Math.max(...runs.map((r) => r.rssMb)), runs: runs.length };
}

export function dirBytes(path) {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

/** Bytes the files under `path` take on disk (allocated blocks: holes of sparse files are not counted). */
export function diskBytes(path) {
  return Number(execFileSync('du', ['-s', '-B1', path], { encoding: 'utf8' }).split('\t')[0]);
}

/**
 * Reads every file under the directories so that the timed run finds them in the page cache, and
 * writes dirty pages out first so that an earlier run's write-back does not land in this one.
 * (Not tar to /dev/null: GNU tar notices and reads nothing.)
 */
export function warm(...dirs) {
  execFileSync('sync');
  for (const d of dirs) {
    if (existsSync(d)) execFileSync('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'sh', d]);
  }
}

/**
 * Drops the files under the directories from the page cache (after writing dirty pages out), so
 * that the timed run reads them from the disk, as a database larger than memory is read. Only
 * these files: the tools' own files stay cached. GNU dd with iflag=nocache and count=0 asks the
 * kernel to drop a whole file's cached pages (posix_fadvise DONTNEED).
 */
export function evict(...dirs) {
  execFileSync('sync');
  for (const d of dirs) {
    if (existsSync(d)) execFileSync('sh', ['-c', 'find "$1" -type f -exec sh -c \'for f; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null; done; exit 0\' sh {} +', 'sh', d]);
  }
  settleAfterEviction();
}

/**
 * On these VMs, every process started just after a large page-cache drop starts slowly, whatever
 * it reads: `node -e 0` took 57-179 ms as the first process after evicting a scale-50 data
 * directory, against 25-35 ms after spawning the same number of processes without the drop,
 * and `python3 -c 0` twice its usual time; it wears off after three or four process starts. That is
 * the kernel's reaction to the drop, not a cold data directory, so three throwaway starts absorb it
 * before the timed run (which still finds the data directory on disk).
 */
function settleAfterEviction() {
  for (let i = 0; i < 3; i++) execFileSync(process.execPath, ['-e', '0']);
}
