/**
 * Reusable buffers for reading stored bytes that are never handed to a consumer: compressed
 * frames on their way to the codec, bytes that are only hashed (stored-file-reader.ts).
 *
 * Design note. Reading a stored file used to allocate a fresh 1 MiB buffer per chunk read, which
 * V8 frees lazily (external memory is collected only after tens of megabytes of it, per isolate):
 * peak memory then depends on when the garbage collector runs, not on what is in use. Buffers
 * taken here go back when their last user is done and are reused by the next read. The pool is
 * module state, so each thread (worker isolate) has its own and a buffer never crosses threads.
 * It keeps at most `max` idle buffers; a thread that needs more at once allocates them, and the
 * ones past `max` are left to the garbage collector when given back.
 */
import { STORED_CHUNK_SIZE } from './stored-file-format.js';

/** Bytes of every pooled buffer: one stored-file chunk. */
export const READ_BUFFER_SIZE = STORED_CHUNK_SIZE;

export class BufferPool {
  private readonly idle: Buffer[] = [];
  /** Buffers this pool has allocated so far (for tests and measurements). */
  allocated = 0;
  /**
   * For tests: overwrite every buffer given back, so that a use after it was given back (a
   * decompression still reading it, a chunk a consumer still holds) shows up as corrupt data.
   */
  poisonReturned = false;

  constructor(
    readonly size: number,
    private readonly max: number,
  ) {}

  take(): Buffer {
    const b = this.idle.pop();
    if (b) return b;
    this.allocated++;
    return Buffer.allocUnsafe(this.size);
  }

  /** Give back a buffer from `take()` whose every view is out of use. */
  give(b: Buffer): void {
    // A buffer given twice would later be handed to two readers at once: refuse the second.
    if (b.length !== this.size || this.idle.includes(b)) return;
    if (this.poisonReturned) b.fill(0xee);
    if (this.idle.length < this.max) this.idle.push(b);
  }
}

/**
 * This thread's pool. Eight buffers cover validate and restore with -j 2 in one thread: each
 * compressed file read uses one buffer, plus one per frame still decompressing when the buffer
 * fills up (three frames decompress ahead of the consumer); each uncompressed one, lent, two (one
 * chunk read ahead).
 */
export const readBuffers = new BufferPool(READ_BUFFER_SIZE, 8);
