/**
 * Positional writes that store every byte or fail. write(2) may store fewer bytes than asked (a
 * file system filling up, a file-size limit) and a later write succeed, for instance once space
 * was freed: a caller that moved on by the length it asked for would leave a hole of zeros in
 * the file, in a restored data file a silently wrong page. So each write is repeated from where
 * the last one stopped until all is down, or until it fails with the error that cut it short.
 */
import type { FileHandle } from 'node:fs/promises';

export async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    // Only a zero-length request writes nothing without an error; never loop on it.
    if (bytesWritten <= 0) throw Object.assign(new Error(`wrote no bytes at offset ${position + off}`), { code: 'EIO' });
    off += bytesWritten;
  }
}
