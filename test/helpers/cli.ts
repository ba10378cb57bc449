// Runs the pgkeep CLI the way a user does: a separate node process on bin/run.js (which loads
// the compiled dist/, so `npm test` builds first).
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresUser } from './run-as-postgres.js';

/** bin/run.js of this checkout, found from this file rather than a fixed /work/main. */
export const PGKEEP_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js');

export interface PgkeepRunOptions {
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  /** Written to stdin, then closed; without it stdin is /dev/null. */
  input?: string;
  /** SIGKILL after this long and reject; default 120 s. */
  timeoutMs?: number;
  cwd?: string;
  /** Run as the postgres OS user (as archive_command does) instead of the current user. */
  asPostgres?: boolean;
  /** Options for node itself, before bin/run.js (e.g. --jitless). */
  nodeFlags?: string[];
}

export interface PgkeepResult {
  /** Exit status; 128 + signal number when a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts pgkeep and returns the child, for tests that kill it mid-way (kill -9). */
export function spawnPgkeep(args: string[], opts: Omit<PgkeepRunOptions, 'timeoutMs'> = {}): ChildProcess {
  const user = opts.asPostgres === true ? postgresUser() : undefined;
  return spawn(process.execPath, [...(opts.nodeFlags ?? []), PGKEEP_BIN, ...args], {
    cwd: opts.cwd,
    // NO_COLOR keeps ANSI escapes out of output that tests match on.
    env: { ...process.env, NO_COLOR: '1', ...(user === undefined ? {} : { HOME: user.home }), ...opts.env },
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
  });
}

/** Runs pgkeep to completion; a non-zero exit is a result, not an error (tests assert on it). */
export function runPgkeep(args: string[], opts: PgkeepRunOptions = {}): Promise<PgkeepResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const child = spawnPgkeep(args, opts);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  return new Promise((resolveRun, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`pgkeep ${args.join(' ')} timed out after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        return;
      }
      resolveRun({ code: code ?? 128 + (signal === null ? 0 : constants.signals[signal]), stdout, stderr });
    });
  });
}
