/**
 * A file's chunks written with one write in flight while the next chunk is read and decoded, so
 * that a restore's writer does not leave the core idle while the kernel takes each write.
 */
import type { FileHandle } from 'node:fs/promises';
import { BufferPool, READ_BUFFER_SIZE } from '../../repository/read-buffer-pool.js';
import { writeFully } from '../../storage/write-fully.js';

/** This thread's buffers for writeBehind: two per file being written. */
const behindBuffers = new BufferPool(READ_BUFFER_SIZE, 4);

/**
 * Writes `chunks` at `position` on with one write in flight while the next chunk is read and
 * decoded: with -j 1, a zstd restore took 2.47 s instead of 2.80 s (docs/performance.md,
 * "Restored files synced as they are finished"). The chunks are lent (valid only until the next
 * is asked for), so each is first copied into one of two buffers of the writer's own. A failed
 * write fails the file at the next chunk or at the end; the write in flight is waited for before
 * the file is closed, whatever happens. Returns the bytes written.
 */
export async function writeBehind(fh: FileHandle, chunks: AsyncIterable<Buffer>, position: number): Promise<number> {
  const own = [behindBuffers.take(), behindBuffers.take()] as const;
  let next = 0;
  let written = 0;
  let inFlight: Promise<void> | undefined;
  try {
    for await (const chunk of chunks) {
      // The buffer two writes back is free: the write that used it was waited for below.
      const buf = own[next]!;
      next ^= 1;
      const copy = chunk.length <= buf.length ? buf.subarray(0, chunk.copy(buf)) : Buffer.from(chunk);
      if (inFlight) await inFlight;
      inFlight = writeFully(fh, copy, position + written);
      // Handled here, thrown where it is waited for: the next chunk may take a while to come.
      inFlight.catch(() => undefined);
      written += chunk.length;
    }
    if (inFlight) await inFlight;
  } finally {
    // The descriptor is closed after this returns: no write may still be using it.
    await inFlight?.catch(() => undefined);
    for (const b of own) behindBuffers.give(b);
  }
  return written;
}
