// Digests of the files of a restored data directory, for "byte-identical" comparisons between
// restores (DELTA against FULL, PAGE and PTRACK against DELTA). Streams every file; follows
// pg_tblspc links; leaves out global/pg_control, which differs between any two backups.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** "size:sha1" of every file under `root/sub`, keyed by its path relative to `root`. */
export async function fileDigests(root: string, sub: string, out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const name of await readdir(join(root, sub))) {
    const rel = `${sub}/${name}`;
    const s = await stat(join(root, rel));
    if (s.isDirectory()) {
      await fileDigests(root, rel, out);
    } else if (rel !== 'global/pg_control') {
      const h = createHash('sha1');
      for await (const chunk of createReadStream(join(root, rel))) h.update(chunk as Buffer);
      out.set(rel, `${s.size}:${h.digest('hex')}`);
    }
  }
  return out;
}

/** The relation files of a data directory: everything under base/ and global/. */
export async function relationDigests(root: string): Promise<Map<string, string>> {
  return new Map([...(await fileDigests(root, 'base')), ...(await fileDigests(root, 'global'))]);
}

/**
 * All-zero pages in a relation file: pages a bulk extension added and nothing has written yet
 * (COPY leaves some on PostgreSQL 16 and later). Their LSN is 0: no WAL record names them.
 */
export async function zeroPageCount(path: string, blockSize = 8192): Promise<number> {
  const file = await readFile(path);
  let n = 0;
  for (let off = 0; off < file.length; off += blockSize) if (file.subarray(off, off + blockSize).every((b) => b === 0)) n++;
  return n;
}
