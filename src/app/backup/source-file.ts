/**
 * A file of the data directory opened for reading by a copy.
 *
 * Design note. Every asynchronous file-system call is a trip through libuv's thread pool, 40 to
 * 90 µs on these machines, and reading a small file takes four of them (open, read, read to
 * the end, close): for the hundreds of small relation forks and catalog files of a cluster that
 * costs more than the reading. So the file is opened synchronously, and read synchronously when
 * it is small (a few page-cache copies of at most SMALL_FILE_BYTES, microseconds each); a larger
 * file is read asynchronously, so that a long read from disk does not hold up the thread's other
 * work (a worker pool's replies, compression callbacks).
 */
import { closeSync, fstatSync, openSync, read as readCallback, readSync, close as closeCallback } from 'node:fs';
import { promisify } from 'node:util';
import { errnoCode, fromIoError } from '../../errors.js';

/** Files up to this size are read with synchronous calls. */
export const SMALL_FILE_BYTES = 256 * 1024;

const readAsync = promisify(readCallback);
const closeAsync = promisify(closeCallback);

export interface SourceFile {
  /** Bytes read into `buffer[offset..]` from `position`: fewer than `length` only at the end. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /**
   * The same read, synchronous whatever the file's size: for a caller that reads a few pages
   * likely in the page cache and times the read (readSelectedPages), since a synchronous read
   * from disk holds up the thread.
   */
  readNow(buffer: Buffer, offset: number, length: number, position: number): number;
  close(): Promise<void>;
}

/** Opens a file for reading; undefined when it vanished (a dropped relation: replay handles it). */
export function openSourceFile(absPath: string): SourceFile | undefined {
  let fd: number;
  try {
    fd = openSync(absPath, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw fromIoError(e, 'open', absPath);
  }
  let small: boolean;
  try {
    small = fstatSync(fd).size <= SMALL_FILE_BYTES;
  } catch (e) {
    closeSync(fd);
    throw fromIoError(e, 'stat', absPath);
  }
  let closed = false;
  return {
    async read(buffer, offset, length, position) {
      try {
        if (small) return readSync(fd, buffer, offset, length, position);
        return (await readAsync(fd, buffer, offset, length, position)).bytesRead;
      } catch (e) {
        throw fromIoError(e, 'read', absPath);
      }
    },
    readNow(buffer, offset, length, position) {
      try {
        return readSync(fd, buffer, offset, length, position);
      } catch (e) {
        throw fromIoError(e, 'read', absPath);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (small) closeSync(fd);
      else await closeAsync(fd);
    },
  };
}
