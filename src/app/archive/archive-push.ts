/**
 * archive_command: store one WAL file in the archive, durably, compressed with the instance's
 * setting. The same content pushed twice succeeds: PostgreSQL retries after a crash between our
 * rename and its own bookkeeping, and a standby with archive_mode = always pushes the segments
 * its primary pushed (test/e2e/standby-archive-backup.test.ts). Different content under an
 * existing name is refused unless --overwrite, since it usually means two clusters share one
 * archive. A segment's long page header carries the system identifier: a segment of another
 * cluster is refused.
 */
import { open } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { CompressAlg } from '../../core/backup-types.js';
import { errnoCode, fromIoError, PgkeepError } from '../../errors.js';
import { readSegmentSystemIdentifier } from '../../postgres/wal/wal-page.js';
import { createHasher } from '../../repository/hash.js';
import { defaultLevel } from '../../repository/codecs.js';
import { assertWalFileName, statArchivedWal, writeArchivedWal } from '../../repository/wal-archive.js';
import type { ArchiveContext } from './archive-context.js';

export type PushOutcome = 'stored' | 'already-archived' | 'overwritten';

const CHUNK = 1024 * 1024;

export async function archivePush(ctx: ArchiveContext, walPath: string, walName: string, overwrite: boolean): Promise<PushOutcome> {
  assertWalFileName(walName);
  const path = walFileOnDisk(walPath);
  const buffer = Buffer.allocUnsafe(CHUNK);
  const { size, checksum, firstPage } = await hashFile(path, buffer);

  if (/^[0-9A-F]{24}$/.test(walName)) {
    const sysid = readSegmentSystemIdentifier(firstPage);
    if (sysid !== undefined && sysid.toString() !== ctx.instance.systemIdentifier) {
      throw new PgkeepError('SYSTEM_ID_MISMATCH', `WAL segment ${walName} belongs to system ${sysid}, instance ${ctx.instance.name} is system ${ctx.instance.systemIdentifier}`, 'point archive_command at the instance of this cluster');
    }
  }

  const existing = await statArchivedWal(ctx.store, ctx.instance.name, walName);
  if (existing) {
    if (existing.size === size && existing.checksum === checksum) return 'already-archived';
    if (!overwrite) {
      throw new PgkeepError('ARCHIVE_CONFLICT', `the archive already holds a different ${walName} (checksum ${existing.checksum}, the new file's is ${checksum})`, 'check that no other cluster archives into this instance; --overwrite replaces the archived file');
    }
  }

  const alg = (ctx.instance.settings['compress-algorithm'] ?? 'none') as CompressAlg;
  const level = ctx.instance.settings['compress-level'] !== undefined ? Number(ctx.instance.settings['compress-level']) : defaultLevel(alg);
  await writeArchivedWal(ctx.store, ctx.instance.name, walName, { size, checksum, alg, level }, async (write) => {
    await readFileChunks(path, buffer, write);
  });
  return existing ? 'overwritten' : 'stored';
}

/** The file %p names: PostgreSQL runs archive_command in the data directory, and %p is relative to it. */
export function walFileOnDisk(walPath: string): string {
  return isAbsolute(walPath) ? walPath : resolve(process.cwd(), walPath);
}

async function hashFile(path: string, buffer: Buffer): Promise<{ size: number; checksum: string; firstPage: Buffer }> {
  const hasher = createHasher();
  let size = 0;
  let firstPage = Buffer.alloc(0);
  await readFileChunks(path, buffer, async (chunk) => {
    if (size === 0) firstPage = Buffer.from(chunk.subarray(0, Math.min(chunk.length, 8192)));
    hasher.update(chunk);
    size += chunk.length;
  });
  return { size, checksum: hasher.digestHex(), firstPage };
}

async function readFileChunks(path: string, buffer: Buffer, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new PgkeepError('INVALID_ARGUMENT', `WAL file ${path} does not exist`, 'pass %p as --wal-file-path (relative to the data directory, or absolute)');
    throw fromIoError(e, 'open', path);
  }
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      await sink(buffer.subarray(0, bytesRead));
    }
  } catch (e) {
    throw fromIoError(e, 'read', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
