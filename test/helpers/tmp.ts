// Temp dirs for tests, removed when the process exits (see cleanup.ts).
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEMP_PREFIX, registerTempDir, sweepLeftovers } from './cleanup.js';
import { postgresUser } from './run-as-postgres.js';

export interface TempDirOptions {
  /**
   * 'postgres' (mode 0700, owned by postgres): for data directories, tablespaces, and
   * repositories that the server's archive_command (which runs as postgres) writes to.
   * 'root' (the default, mode 0755): readable and traversable by postgres, writable only by root.
   */
  owner?: 'postgres' | 'root';
}

const forgetters = new Map<string, () => void>();

/** Makes a fresh dir under os.tmpdir() named pgkeep-t<pid>-<prefix>-XXXXXX; removed at exit. */
export async function makeTempDir(prefix: string, opts: TempDirOptions = {}): Promise<string> {
  sweepLeftovers();
  const safePrefix = prefix.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 24);
  const dir = await mkdtemp(join(tmpdir(), `${TEMP_PREFIX}${process.pid}-${safePrefix}-`));
  forgetters.set(dir, registerTempDir(dir));
  if (opts.owner === 'postgres') {
    const user = postgresUser();
    await chown(dir, user.uid, user.gid);
    await chmod(dir, 0o700);
  } else {
    await chmod(dir, 0o755);
  }
  return dir;
}

/** Removes a dir made by makeTempDir now rather than at exit. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  forgetters.get(dir)?.();
  forgetters.delete(dir);
}
