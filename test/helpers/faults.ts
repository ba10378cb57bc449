// Fault injection for end-to-end tests: a seeded PRNG (printed, so that a run can be replayed),
// damage to repository files (flip a byte, truncate, delete), kill -9 of a pgkeep process at a
// moment, a tmpfs to fill, an independent list of leftovers, and the totals a suite prints.
import { execFile } from 'node:child_process';
import { open, readdir, rm, stat, statfs, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnPgkeep, type PgkeepRunOptions } from './cli.js';

export { prng, seedFrom } from './random.js';

const execFileAsync = promisify(execFile);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type Damage = 'flip' | 'truncate' | 'delete';
export const DAMAGES: readonly Damage[] = ['flip', 'truncate', 'delete'];

/**
 * Damages one file: flips every bit of the byte at `offset` (default: the middle), cuts the
 * file to half its length, or deletes it.
 */
export async function damageFile(path: string, damage: Damage, offset?: number): Promise<void> {
  const size = (await stat(path)).size;
  if (damage === 'delete') {
    await rm(path);
  } else if (damage === 'truncate') {
    await truncate(path, Math.floor(size / 2));
  } else {
    const at = offset ?? Math.floor(size / 2);
    const fh = await open(path, 'r+');
    try {
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, at);
      b[0] = b[0]! ^ 0xff;
      await fh.write(b, 0, 1, at);
    } finally {
      await fh.close();
    }
  }
}

export interface KillResult {
  /** Exit status when the process ended by itself before the kill, else undefined. */
  exitedAlone: number | undefined;
  output: string;
  pid: number;
  /** From the start to the exit (or the kill). */
  elapsedMs: number;
}

/** Starts pgkeep, kills it with SIGKILL `delayMs` after the start (unless it ended first). */
export async function killPgkeepAfter(args: string[], delayMs: number, opts: Omit<PgkeepRunOptions, 'timeoutMs'> = {}): Promise<KillResult> {
  const t0 = Date.now();
  const child = spawnPgkeep(args, opts);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
  const closed = new Promise<number>((r) => child.on('close', (code, signal) => r(code ?? (signal ? 137 : 0))));
  let ended = false;
  void closed.then(() => (ended = true));
  await Promise.race([sleep(delayMs), closed]);
  if (!ended) child.kill('SIGKILL');
  const code = await closed;
  return { exitedAlone: ended && child.signalCode === null ? code : undefined, output, pid: child.pid ?? -1, elapsedMs: Date.now() - t0 };
}

/** PosixStore's temporary names: `<name>.tmp.<pid>.<random hex>`. */
export const TEMPORARY = /\.tmp\.(\d+)\.[0-9a-f]+$/;

/** Every temporary under `dir`, relative paths, sorted. */
export async function findTemporaries(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(r);
      else if (TEMPORARY.test(e.name)) found.push(r);
    }
  };
  await walk('');
  return found.sort();
}

/** Paths validate reported as unowned ("WARNING: unowned <path>: <reason>"), sorted. */
export function unownedReported(stderr: string): string[] {
  return [...stderr.matchAll(/^WARNING: unowned (\S+): /gm)].map((m) => m[1]!).sort();
}

/** Bytes available on the file system holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Mounts a tmpfs of `sizeMb` on `dir` (owned by uid:gid, mode 0700). Returns undefined on
 * success, or why it cannot be done here (not root, no mount permission in a container...).
 */
export async function mountTmpfs(dir: string, sizeMb: number, owner: { uid: number; gid: number }): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700,uid=${owner.uid},gid=${owner.gid}`, 'tmpfs', dir]);
    return undefined;
  } catch (e) {
    return `mount -t tmpfs failed: ${(e as Error).message.trim()}`;
  }
}

export async function unmount(dir: string): Promise<void> {
  await execFileAsync('umount', [dir]).catch(async () => {
    await sleep(500);
    await execFileAsync('umount', ['-l', dir]);
  });
}

/** What a fault suite prints at its end: faults by kind, checks made, data lost (must be 0). */
export class FaultTotals {
  readonly faults = new Map<string, number>();
  backupsValidated = 0;
  restoresVerified = 0;
  dataLost = 0;
  readonly losses: string[] = [];

  fault(kind: string): void {
    this.faults.set(kind, (this.faults.get(kind) ?? 0) + 1);
  }

  lost(what: string): void {
    this.dataLost++;
    this.losses.push(what);
  }

  get injected(): number {
    return [...this.faults.values()].reduce((a, b) => a + b, 0);
  }

  report(title: string): string {
    const kinds = [...this.faults.entries()].map(([k, n]) => `  ${k}: ${n}`).join('\n');
    return [
      `${title}: totals`,
      `faults injected: ${this.injected}`,
      kinds,
      `backups validated: ${this.backupsValidated}`,
      `restores verified (started, data checked): ${this.restoresVerified}`,
      `data lost: ${this.dataLost}${this.losses.length ? ` (${this.losses.join('; ')})` : ''}`,
    ].join('\n');
  }
}
