/**
 * Raw byte storage: the only interface the repository layer uses to touch the disk.
 *
 * Design note. The repository format (manifests, stored files, control files) is written in terms
 * of keys and byte streams, never file descriptors, so that an object store can implement the same
 * contract later without the engine changing. The contract is deliberately small:
 *
 * - Keys are '/'-separated paths relative to the repository root ('instances/main/backups/X/backup.json').
 *   They never start with '/', never contain '.' or '..' segments, empty segments or NUL.
 * - An object is either fully visible or absent: writers stage bytes under a temporary name and
 *   only `commit()` makes them visible, durably. A crash leaves at most a temporary behind, which
 *   `list()` does not report and a cleanup can remove.
 * - "Directories" exist only as key prefixes; `list()` names the direct children of a prefix.
 *
 * Errors are PgkeepError (DISK_FULL, REPO_NOT_WRITABLE, IO_ERROR...) naming the path. A missing
 * object on `read`/`openRead`/`openReader` is an IO_ERROR for which `isMissingObjectError` returns true.
 */
import { errnoCode, isPgkeepError } from '../errors.js';

/** A staged object. Exactly one of `commit()` or `abort()` ends it. */
export interface ObjectWriter {
  /** Append bytes. The caller may reuse `chunk` once the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Append `length` zero bytes. The store may leave them unwritten (a hole in a sparse file):
   * read back they are zeros all the same, and they cost neither a write nor disk space.
   */
  writeZeros(length: number): Promise<void>;
  /**
   * fsync, rename into place, fsync dir: after it resolves the object is durable and visible. A
   * store made by `deferringSync()` leaves out both fsyncs: the object is visible at once (to
   * this host, and after a kill), but it survives a power loss only once `syncObjects` covers it.
   */
  commit(): Promise<void>;
  /** Remove the temporary; safe to call after a failed write (and a no-op after commit). */
  abort(): Promise<void>;
  /** Bytes accepted by `write` so far. */
  readonly bytesWritten: number;
}

/**
 * A sequential read of one object (or range) into buffers the caller supplies: see
 * `ByteStore.openReader`. `close()` ends it, also after a failed read.
 */
export interface ObjectReader {
  /** Bytes of the object (or range) not read yet. */
  readonly remaining: number;
  /**
   * Read the next bytes into `into`, filling it unless the object (or range) ends first; resolves
   * to the number of bytes read, 0 at the end. The store keeps no reference to `into` once the
   * promise resolves: the caller may reuse it for the next read.
   */
  read(into: Uint8Array): Promise<number>;
  /** Release the object (a file handle here); safe to call twice. */
  close(): Promise<void>;
}

/** A byte range of an object: `start` inclusive, `end` exclusive (defaults to the object's end). */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface ObjectStat {
  size: number;
  mtimeMs: number;
}

export interface ByteStore {
  /** Where the store lives, for messages (a directory path, later a URL). */
  readonly root: string;
  /**
   * Stage a new object at `key`: bytes go to a temporary name beside the key; parent
   * "directories" are created (and made durable) as needed. Replaces the object on commit.
   */
  openWrite(key: string): Promise<ObjectWriter>;
  /** Write a whole small object durably in one call (openWrite + write + commit). */
  writeAtomic(key: string, data: Uint8Array | string): Promise<void>;
  /** Read a whole small object (manifests, control files). Missing: see isMissingObjectError. */
  read(key: string): Promise<Buffer>;
  /**
   * Stream an object (or a range of it) in bounded chunks (at most 1 MiB each). Each yielded
   * Buffer belongs to the consumer: it is never reused by the store.
   */
  openRead(key: string, range?: ByteRange): AsyncIterable<Buffer>;
  /**
   * Read an object (or a range of it) sequentially into buffers the caller owns and may reuse:
   * no allocation per chunk, unlike `openRead`, for readers that do not hand the bytes on (the
   * stored-file reader decompresses and hashes from a few pooled buffers). A missing key rejects
   * (see isMissingObjectError). The caller closes the reader.
   */
  openReader(key: string, range?: ByteRange): Promise<ObjectReader>;
  /** Size and modification time, or undefined when the key does not exist. */
  stat(key: string): Promise<ObjectStat | undefined>;
  /** True when the key names an object or a non-empty prefix. */
  exists(key: string): Promise<boolean>;
  /** Names (not keys) of the direct children of `prefix`, sorted; [] when it does not exist. '' is the root. Temporaries are not listed. */
  list(prefix: string): Promise<string[]>;
  /** Remove one object; a missing key is fine. */
  remove(key: string): Promise<void>;
  /** Remove everything under `prefix`, and the prefix itself; missing is fine. */
  removeTree(prefix: string): Promise<void>;
  /**
   * Make the object at `from` also available at `to` without rewriting its bytes (a hard link
   * here; a server-side copy on an object store), durably (with `deferringSync()`, the new name
   * once `syncObjects` covers it). `to` must not exist. Merges use it so that files no increment
   * changed are never rewritten.
   */
  link(from: string, to: string): Promise<void>;
  /**
   * Remove temporaries under `prefix` that writers which are gone left behind (a process killed
   * between writing and renaming). Temporaries of live writers stay. Returns the keys removed.
   */
  cleanupTemporaries(prefix: string): Promise<string[]>;
  /**
   * The same objects, written by writers whose `commit` does not wait for any fsync: for a
   * writer of many objects (a backup's copy), whose copiers then never wait on the disk, and
   * whose objects are made durable many at a time. Whoever uses it calls `syncObjects` before
   * anything is made to rely on those objects surviving a power loss (a journal line, a manifest).
   */
  deferringSync(): ByteStore;
  /** True for a store made by `deferringSync()`. */
  readonly defersSync: boolean;
  /**
   * Makes the committed objects at `keys` survive a power loss, content and name: an fsync of
   * each, then one of each distinct parent directory. Cheap for objects already durable.
   */
  syncObjects(keys: Iterable<string>): Promise<void>;
  /**
   * Starts making objects durable as they are handed over, a few at a time, so that the
   * disk writes back the first while later ones are still being written: an early start for
   * `syncObjects`, which still makes them durable with their names before anything relies on
   * them. An object gone by its turn (renamed, removed) is skipped. `drain` waits for every one
   * handed over and throws the first failure, which is never left unhandled meanwhile.
   */
  syncAhead(): SyncAhead;
}

/** See ByteStore.syncAhead. */
export interface SyncAhead {
  add(keys: Iterable<string>): void;
  drain(): Promise<void>;
}

/** True for the error a store raises when reading a key that does not exist. */
export function isMissingObjectError(e: unknown): boolean {
  if (!isPgkeepError(e)) return false;
  const code = errnoCode(e.cause);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
