/**
 * ByteStore over a local (or mounted) POSIX file system.
 *
 * Durability recipe for every object: write `<name>.tmp.<pid>.<random>` beside the target
 * (created 0600, exclusive), fsync it, rename it over the target, fsync the directory. The rename
 * is atomic, so readers see the old object or the new one, never a mix; the two fsyncs make the
 * bytes and then the name survive a power loss. New directories are created 0700 and their
 * parents fsynced, otherwise a committed object could vanish with the directory entry that
 * leads to it. A store made by `deferringSync()` leaves both fsyncs out of each commit; its user
 * makes many objects durable at once (`syncObjects`) before relying on them (docs/repository-format.md,
 * "Durability of a backup's stored files").
 *
 * The pid in temporary names lets `cleanupTemporaries` tell a dead writer's leftovers (kill -9,
 * crash) from a live writer's work in progress. That test only holds on one host; for a
 * repository shared between hosts pass `staleAfterMs`.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { errnoCode, fromIoError, isPgkeepError, PgkeepError } from '../errors.js';
import type { ByteRange, ByteStore, ObjectReader, ObjectStat, ObjectWriter, SyncAhead } from './byte-store.js';
import { assertValidKey, processAlive, TEMPORARY_NAME, temporaryName, temporaryOwnerPid } from './object-key.js';
import { createdDirs, giveFile, givePath, ownerForNewPaths, type PathOwner } from './repository-owner.js';
import { writeFully } from './write-fully.js';

/** Largest chunk `openRead` yields: bounded so that memory stays flat whatever the file size. */
export const READ_CHUNK_SIZE = 1024 * 1024;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** syncObjects, fsyncFiles: fsyncs in flight at once (libuv runs 4 at a time; the rest wait their turn there). */
const SYNCS_AT_ONCE = 8;
/**
 * FileSyncQueue and syncAhead: fsyncs in flight while files are still being written (a restore's,
 * a backup's stored files). Two leave libuv's other threads to the reads and writes; for a
 * restore one, four and eight were slower (docs/performance.md, "Restored files synced as they
 * are finished").
 */
const SYNCS_AHEAD = 2;

export class PosixStore implements ByteStore {
  readonly root: string;
  /** Run as root in another user's repository: that user, given everything created (repository-owner.ts). */
  private readonly owner: PathOwner | undefined;

  constructor(
    root: string,
    /** See ByteStore.deferringSync. */
    readonly defersSync = false,
  ) {
    this.root = resolve(root);
    this.owner = ownerForNewPaths(this.root);
  }

  deferringSync(): PosixStore {
    return this.defersSync ? this : new PosixStore(this.root, true);
  }

  async syncObjects(keys: Iterable<string>): Promise<void> {
    const files = new Set<string>();
    for (const key of keys) {
      assertValidKey(key);
      files.add(this.pathOf(key));
    }
    await fsyncFiles([...files]);
    await eachAtMost([...new Set([...files].map((f) => dirname(f)))], SYNCS_AT_ONCE, fsyncDir);
  }

  syncAhead(): SyncAhead {
    const queue = new FileSyncQueue(SYNCS_AHEAD, fsyncFileIfPresent);
    return {
      add: (keys) => {
        for (const key of keys) queue.add(this.pathOf(key));
      },
      drain: () => queue.drain(),
    };
  }

  /** The file-system path of a key (validated, so it cannot leave the root). */
  pathOf(key: string): string {
    assertValidKey(key, true);
    return key === '' ? this.root : join(this.root, ...key.split('/'));
  }

  async openWrite(key: string): Promise<ObjectWriter> {
    assertValidKey(key);
    const target = this.pathOf(key);
    const dir = dirname(target);
    await ensureDirDurable(dir, this.owner);
    const name = target.slice(dir.length + 1);
    const temp = join(dir, temporaryName(name, process.pid, randomBytes(6).toString('hex')));
    let fh: FileHandle;
    try {
      fh = await open(temp, 'wx', FILE_MODE);
    } catch (e) {
      throw fromIoError(e, 'create', temp);
    }
    try {
      await giveFile(this.owner, fh, temp);
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw e;
    }
    return new PosixObjectWriter(fh, temp, target, !this.defersSync);
  }

  async writeAtomic(key: string, data: Uint8Array | string): Promise<void> {
    const writer = await this.openWrite(key);
    try {
      await writer.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      await writer.commit();
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  async read(key: string): Promise<Buffer> {
    assertValidKey(key);
    const path = this.pathOf(key);
    try {
      return await readFile(path);
    } catch (e) {
      throw fromIoError(e, 'read', path);
    }
  }

  async *openRead(key: string, range?: ByteRange): AsyncIterable<Buffer> {
    const reader = await this.openReader(key, range);
    try {
      for (;;) {
        const want = Math.min(READ_CHUNK_SIZE, reader.remaining);
        if (want === 0) break;
        // A fresh buffer per chunk: the consumer owns what it is given (it may keep it, e.g. to
        // hand it to an asynchronous decompression), so reusing one would corrupt its data.
        // Readers that keep nothing use openReader with buffers of their own instead.
        const buf = Buffer.allocUnsafe(want);
        const n = await reader.read(buf);
        if (n === 0) break;
        yield n === want ? buf : buf.subarray(0, n);
      }
    } finally {
      await reader.close();
    }
  }

  async openReader(key: string, range?: ByteRange): Promise<ObjectReader> {
    assertValidKey(key);
    const path = this.pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw fromIoError(e, 'open', path);
    }
    try {
      // Objects are immutable once committed, so the size read now bounds the whole read.
      const { size } = await fh.stat();
      const end = Math.min(range?.end ?? size, size);
      return new PosixObjectReader(fh, path, Math.min(range?.start ?? 0, end), end);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw fromIoError(e, 'read', path);
    }
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    const path = this.pathOf(key);
    try {
      const s = await stat(path);
      return { size: s.size, mtimeMs: s.mtimeMs };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw fromIoError(e, 'stat', path);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async list(prefix: string): Promise<string[]> {
    const path = this.pathOf(prefix);
    let names: string[];
    try {
      names = await readdir(path);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw fromIoError(e, 'list', path);
    }
    return names.filter((n) => !TEMPORARY_NAME.test(n)).sort();
  }

  async remove(key: string): Promise<void> {
    assertValidKey(key);
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (e) {
      if (isNotFound(e)) return;
      throw fromIoError(e, 'remove', path);
    }
    await fsyncDir(dirname(path));
  }

  async link(from: string, to: string): Promise<void> {
    assertValidKey(from);
    assertValidKey(to);
    const src = this.pathOf(from);
    const dst = this.pathOf(to);
    await ensureDirDurable(dirname(dst), this.owner);
    try {
      await link(src, dst);
    } catch (e) {
      const code = errnoCode(e);
      // Another file system, or one without hard links: fall back to a durable copy.
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw fromIoError(e, 'link', dst);
      const temp = temporaryName(dst, process.pid, randomBytes(4).toString('hex'));
      try {
        await copyFile(src, temp);
        await givePath(this.owner, temp);
        const fh = await open(temp, 'r');
        await fh.sync();
        await fh.close();
        await rename(temp, dst);
      } catch (copyError) {
        await unlink(temp).catch(() => undefined);
        throw fromIoError(copyError, 'copy', dst);
      }
    }
    if (!this.defersSync) await fsyncDir(dirname(dst));
  }

  async removeTree(prefix: string): Promise<void> {
    // Never the root: a bug that passed '' here would wipe the whole repository.
    assertValidKey(prefix);
    const path = this.pathOf(prefix);
    try {
      await rm(path, { recursive: true, force: true });
    } catch (e) {
      throw fromIoError(e, 'remove', path);
    }
    await fsyncDir(dirname(path)).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
  }

  /**
   * Remove temporaries under `prefix` left by writers that are gone: their pid is not a live
   * process on this host, or (with `staleAfterMs`) they have not been touched for that long.
   * Temporaries of this process are left alone. Returns the keys removed.
   */
  async cleanupTemporaries(prefix: string, opts: { staleAfterMs?: number } = {}): Promise<string[]> {
    const removed: string[] = [];
    const now = Date.now();
    const walk = async (dirKey: string): Promise<void> => {
      const path = this.pathOf(dirKey);
      let entries;
      try {
        entries = await readdir(path, { withFileTypes: true });
      } catch (e) {
        if (isNotFound(e)) return;
        throw fromIoError(e, 'list', path);
      }
      for (const entry of entries) {
        const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
        if (entry.isDirectory()) {
          await walk(key);
          continue;
        }
        const pid = temporaryOwnerPid(entry.name);
        if (pid === undefined || pid === process.pid) continue;
        let stale = !processAlive(pid);
        if (!stale && opts.staleAfterMs !== undefined) {
          const s = await this.stat(key);
          stale = s !== undefined && now - s.mtimeMs > opts.staleAfterMs;
        }
        if (stale) {
          await this.remove(key);
          removed.push(key);
        }
      }
    };
    await walk(prefix);
    return removed;
  }
}

class PosixObjectReader implements ObjectReader {
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    private pos: number,
    private end: number,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  async read(into: Uint8Array): Promise<number> {
    if (this.closed) throw new PgkeepError('INTERNAL', `cannot read ${this.path}: the reader is closed`);
    let got = 0;
    try {
      // FileHandle.read may return less than asked before the end; loop until `into` is full.
      while (got < into.length && this.pos < this.end) {
        const { bytesRead } = await this.fh.read(into, got, Math.min(into.length - got, this.end - this.pos), this.pos);
        if (bytesRead === 0) {
          this.end = this.pos; // shorter than its size said: its end is here
          break;
        }
        got += bytesRead;
        this.pos += bytesRead;
      }
    } catch (e) {
      throw fromIoError(e, 'read', this.path);
    }
    return got;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

class PosixObjectWriter implements ObjectWriter {
  private state: 'open' | 'committed' | 'aborted' | 'failed' = 'open';
  private written = 0;
  /** The file's last bytes are zeros not written yet (writeZeros): commit extends it to them. */
  private endsInHole = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly temp: string,
    private readonly target: string,
    /** false: the file's and the directory's fsyncs are left to ByteStore.syncObjects. */
    private readonly sync: boolean,
  ) {}

  get bytesWritten(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.assertOpen('write');
    try {
      // Positional, since writeZeros moves the end past what the file holds.
      await writeFully(this.fh, chunk, this.written);
      this.written += chunk.length;
      this.endsInHole = false;
    } catch (e) {
      this.state = 'failed';
      throw fromIoError(e, 'write', this.temp);
    }
  }

  /** A hole: nothing is written until commit sets the file's length, if the zeros end it. */
  async writeZeros(length: number): Promise<void> {
    this.assertOpen('write');
    this.written += length;
    this.endsInHole = length > 0 || this.endsInHole;
  }

  async commit(): Promise<void> {
    this.assertOpen('commit');
    try {
      if (this.endsInHole) await this.fh.truncate(this.written);
      if (this.sync) await this.fh.sync();
      await this.fh.close();
    } catch (e) {
      this.state = 'failed';
      throw fromIoError(e, 'write', this.temp);
    }
    try {
      await rename(this.temp, this.target);
    } catch (e) {
      this.state = 'failed';
      throw fromIoError(e, 'rename', this.target);
    }
    this.state = 'committed';
    if (this.sync) await fsyncDir(dirname(this.target));
  }

  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    const wasOpen = this.state === 'open' || this.state === 'failed';
    this.state = 'aborted';
    if (wasOpen) await this.fh.close().catch(() => undefined);
    try {
      await unlink(this.temp);
    } catch (e) {
      if (!isNotFound(e)) throw fromIoError(e, 'remove', this.temp);
    }
  }

  private assertOpen(action: string): void {
    if (this.state !== 'open') {
      throw new PgkeepError('INTERNAL', `cannot ${action} ${this.target}: the writer is ${this.state}`);
    }
  }
}

/** Create `dir` (and missing parents) 0700, given to `owner` if any, and fsync the parents of everything created. */
async function ensureDirDurable(dir: string, owner: PathOwner | undefined): Promise<void> {
  let first: string | undefined;
  try {
    first = await mkdir(dir, { recursive: true, mode: DIR_MODE });
  } catch (e) {
    throw fromIoError(e, 'create directory', dir);
  }
  // Each new directory's entry lives in its parent: sync from the first one's parent down.
  for (const d of createdDirs(first, dir)) {
    await givePath(owner, d);
    await fsyncDir(dirname(d));
  }
}

/** Runs `work` over `items`, at most `n` at a time; the first failure is thrown once all have settled. */
async function eachAtMost<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < items.length && errors.length === 0) {
      try {
        await work(items[next++] as T);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
  if (errors.length > 0) throw errors[0];
}

/**
 * fsync of every file at `paths`, each through a new descriptor, as initdb --sync-only and
 * pg_basebackup do: Linux reports a write-back error to the next fsync of the file, whoever
 * opened it (4.16 and later). Several in flight, so that the file system can commit them
 * together. Errors name the file.
 */
async function fsyncFiles(paths: readonly string[]): Promise<void> {
  await eachAtMost(paths, SYNCS_AT_ONCE, fsyncFile);
}

/**
 * fsyncs of files handed over as they are finished, at most `n` in flight, each started as soon
 * as a place is free: the disk writes back the first files while later ones are still being
 * written, instead of all of them after the last. `drain` waits for every fsync asked for and
 * throws the first failure (after which nothing more is started). A failure is kept, never left
 * unhandled, so a caller that gives up early need not drain.
 */
export class FileSyncQueue {
  private readonly waiting: string[] = [];
  private running = 0;
  private failed = false;
  private failure: unknown;
  private onIdle: (() => void) | undefined;

  constructor(
    private readonly n: number = SYNCS_AHEAD,
    /** The fsync itself (a test may watch the calls). */
    private readonly sync: (path: string) => Promise<void> = fsyncFile,
  ) {}

  add(path: string): void {
    if (this.failed) return;
    this.waiting.push(path);
    this.pump();
  }

  async drain(): Promise<void> {
    while (this.running > 0 || this.waiting.length > 0) {
      await new Promise<void>((resolve) => {
        this.onIdle = resolve;
        this.pump();
      });
    }
    if (this.failed) throw this.failure;
  }

  private pump(): void {
    while (this.running < this.n && this.waiting.length > 0) {
      const path = this.waiting.shift() as string;
      this.running++;
      this.sync(path).then(
        () => this.settled(),
        (e: unknown) => {
          if (!this.failed) {
            this.failed = true;
            this.failure = e;
          }
          this.waiting.length = 0;
          this.settled();
        },
      );
    }
    if (this.running === 0 && this.onIdle) {
      const idle = this.onIdle;
      this.onIdle = undefined;
      idle();
    }
  }

  private settled(): void {
    this.running--;
    this.pump();
  }
}

/** fsync of the file at `path` through a new descriptor; errors name the file. */
async function fsyncFile(path: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    await fh.sync();
  } catch (e) {
    throw fromIoError(e, 'sync', path);
  } finally {
    await fh?.close();
  }
}

/** fsyncFile, for a file that may have been renamed or removed since it was handed over (syncAhead). */
async function fsyncFileIfPresent(path: string): Promise<void> {
  try {
    await fsyncFile(path);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some file systems (and platforms) refuse fsync on a directory; there is nothing better to do.
    if (errnoCode(e) === 'EINVAL' || errnoCode(e) === 'EISDIR') return;
    throw fromIoError(e, 'sync directory', dir);
  } finally {
    await fh?.close();
  }
}

/** A missing path, raised by Node.js or wrapped by fromIoError (whose own code is IO_ERROR). */
function isNotFound(e: unknown): boolean {
  const code = isPgkeepError(e) ? errnoCode(e.cause) : errnoCode(e);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
