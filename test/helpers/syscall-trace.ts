// A command run under strace, and its fsyncs, renames, links, directory and file creations (and,
// if asked, its writes) read back in the order they happened (every thread: strace -f writes one
// line per call as it starts or ends). Tests use it to check the order of durability steps, which
// a test cannot check by cutting the power.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './tmp.js';

const run = promisify(execFile);

/** One system call, by the positions of the lines where it started and where it returned. */
export interface TracedCall {
  call: 'fsync' | 'fdatasync' | 'rename' | 'link' | 'create' | 'mkdir' | 'write';
  /** fsync, fdatasync, write: the file's path (strace -y). rename, link: [from, to]. create (an open with O_CREAT), mkdir: the path. */
  paths: string[];
  start: number;
  end: number;
}

/** The *at forms too, which other architectures (and libcs) use for the same calls. */
const TRACED = ['fsync', 'fdatasync', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'open', 'openat', 'mkdir', 'mkdirat'];
const WRITES = ['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2'];

/**
 * Runs `command` under `strace -f -y`, which must succeed; returns its calls that succeeded.
 * `writes`: its writes too (every descriptor's, so sockets and pipes as well). `slowFsyncUs`:
 * every fsync returns that many microseconds late (strace's fault injection), so that syncs the
 * command runs in the background are still running when it goes on.
 */
export async function traceCalls(command: string[], env: NodeJS.ProcessEnv, opts: { writes?: boolean; slowFsyncUs?: number } = {}): Promise<TracedCall[]> {
  const out = join(await makeTempDir('strace'), 'trace.txt');
  const [file, ...args] = command;
  const traced = opts.writes ? [...TRACED, ...WRITES] : TRACED;
  // The data a write prints is cut at -s, paths are not: 1024 keeps the trace of a restore small.
  const limit = opts.writes ? '1024' : '4096';
  const slow = opts.slowFsyncUs ? ['-e', `inject=fsync:delay_exit=${opts.slowFsyncUs}`] : [];
  await run('strace', ['-f', '-y', '-qq', '-s', limit, '-e', `trace=${traced.join(',')}`, ...slow, '-o', out, file!, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
  return parseTrace(await readFile(out, 'utf8'));
}

/** strace -f -y output to calls; a call split over two lines ("unfinished" / "resumed") is joined. */
export function parseTrace(text: string): TracedCall[] {
  const calls: TracedCall[] = [];
  const open = new Map<string, TracedCall>(); // by thread id
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>.*= (-?\d+)/.exec(line);
    if (resumed) {
      const c = open.get(resumed[1]!);
      open.delete(resumed[1]!);
      if (c && (resumed[3] === '0' || ((c.call === 'create' || c.call === 'write') && Number(resumed[3]) >= 0))) calls.push({ ...c, end: i });
      continue;
    }
    const started = /^(\d+)\s+(fsync|fdatasync|rename|renameat2?|link|linkat|open|openat|mkdir|mkdirat|write|pwrite64|writev|pwritev2?)\((.*)$/.exec(line);
    if (!started) continue;
    const [, tid, name, rest] = started;
    if (name!.startsWith('open') && !rest!.includes('O_CREAT')) continue;
    const call = (name!.startsWith('rename') ? 'rename' : name!.startsWith('link') ? 'link' : name!.startsWith('open') ? 'create' : name!.startsWith('mkdir') ? 'mkdir' : WRITES.includes(name!) ? 'write' : name) as TracedCall['call'];
    const paths = call === 'fsync' || call === 'fdatasync' || call === 'write' ? [/^\d+<(.*?)>/.exec(rest!)?.[1] ?? ''] : [...rest!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    const c: TracedCall = { call, paths, start: i, end: i };
    if (rest!.includes('<unfinished ...>')) open.set(tid!, c);
    // A call strace delayed (slowFsyncUs) ends in " (DELAYED)".
    else if (/= 0( \(DELAYED\))?$/.test(rest!) || ((call === 'create' || call === 'write') && /= \d+(<.*>)?$/.test(rest!))) calls.push(c);
  }
  return calls.sort((a, b) => a.end - b.end);
}
