/**
 * The export use case: the data directory of one backup (FULL or incremental), rebuilt through
 * its chain, streamed as a single tar archive that GNU tar unpacks into a startable directory.
 * docs/export.md says why the archive is laid out the way it is; in short:
 *
 *   1. select   the backup (-i), refuse one that is not restorable, plan every file through the
 *               chain (nothing is written before this, so a bad id leaves no output behind)
 *   2. dirs     every directory first (excluded ones empty, plus pg_wal/archive_status and on 17+
 *               pg_wal/summaries); a tablespace becomes a real directory pg_tblspc/<oid>, not a
 *               link to its original location; to match, tablespace_map is left out and
 *               postgresql.auto.conf gets allow_in_place_tablespaces = on
 *   3. files    in path order, read up to -j files ahead, each written whole before the next
 *   4. control  global/pg_control is the last entry: an archive cut short cannot hold one
 *
 * Memory stays flat: each file read ahead holds at most READ_AHEAD_BYTES, and the tar stream's
 * own backpressure (entry writes, then the sink's drain) paces the readers. A file with more page
 * deltas than are read side by side (MAX_OPEN_DELTAS) is rebuilt in place in a scratch file in
 * `scratchDir`, then read back (as merge does), so a long chain costs no more memory than a short
 * one; each scratch file is removed once its file is in the archive, or the export fails.
 */
import type { Writable } from 'node:stream';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import type { BackupRecord, FileEntry } from '../../core/backup-types.js';
import { USABLE_STATUSES } from '../../core/chain.js';
import type { FilePlan } from '../../core/file-plan.js';
import { PgkeepError } from '../../errors.js';
import { walDirectoriesToCreate } from '../../postgres/pgdata-rules.js';
import { majorOf } from '../../postgres/server-versions.js';
import { assertSafeRelativePath } from '../../repository/layout.js';
import { fileContent, rebuildsInPlace } from '../chain/file-content.js';
import { MAX_OPEN_DELTAS } from '../chain/rebuild-in-place.js';
import { loadChain } from '../chain/load-chain.js';
import { withInstanceLock } from '../instance-locking.js';
import { silentProgress, type OperationProgress } from '../progress.js';
import type { RepoContext } from '../repo-context.js';
import { prepareScratchFiles } from './scratch-files.js';

/** What pack.entry() takes: a name, and whatever else is known. */
export type Headers = Partial<Header> & Pick<Header, 'name'>;

export interface ExportRequest {
  instance: string;
  backupId: string;
  /** --wait: seconds to wait for the instance's shared lock (Infinity: no limit); undefined fails at once. */
  waitSeconds?: number | undefined;
}

/** What `planExport` resolved: everything `writeExport` needs, read before any output exists. */
export interface ExportPlan {
  backup: BackupRecord;
  /** The backups the export reads from, newest first (the target down to its FULL backup). */
  chain: string[];
  /** Archive entries in order; the last one is global/pg_control. */
  entries: ArchiveEntry[];
}

export interface ArchiveEntry {
  header: Headers;
  /** Regular files of the backup: where the content comes from. */
  plan?: FilePlan;
  /** Bytes written after the planned content, or the whole content of a file pgkeep adds. */
  extra?: Buffer;
}

export interface ExportOptions {
  /** Files read and rebuilt ahead of the one being written (-j). */
  threads: number;
  /**
   * Where a file with more than MAX_OPEN_DELTAS page deltas is rebuilt (--tmp-dir): it needs
   * room for one such file per thread. Checked before anything is written, and only when the
   * backup has such a file.
   */
  scratchDir: string;
  progress?: OperationProgress;
}

export interface ExportResult {
  backup: BackupRecord;
  chain: string[];
  directories: number;
  symlinks: number;
  files: number;
  /** Bytes of file content written (what the data directory holds once unpacked). */
  bytes: number;
  /** Bytes of the archive itself, headers and padding included. */
  archiveBytes: number;
  /** Stored bytes read from the repository (every source of every file). */
  bytesRead: number;
  /** Scratch files of exports gone from this host, found in the scratch directory and removed. */
  removedScratch: string[];
}

/**
 * A directory in pg_tblspc makes recovery PANIC ("unexpected directory entry ... found in
 * pg_tblspc/") unless this is on; it exists from PostgreSQL 15 and from 14.5 and 13.8.
 */
const IN_PLACE_SETTING = Buffer.from(
  '\n# Added by pgkeep export: the tablespaces of this archive are directories inside pg_tblspc/.\n' +
    'allow_in_place_tablespaces = on\n',
);
const AUTO_CONF = 'postgresql.auto.conf';

/** Bytes of one file's content read ahead of the tar writer (per file in flight). */
const READ_AHEAD_BYTES = 2 * 1024 * 1024;

/**
 * Plans the export and hands the plan to `write` (which calls writeExport), all under the
 * instance's shared lock: no merge or delete can change the chain between plan and last byte.
 */
export async function exportBackup<T>(ctx: RepoContext, req: ExportRequest, write: (plan: ExportPlan) => Promise<T>): Promise<T> {
  ctx.catalog.requireInstance(req.instance);
  return withInstanceLock(ctx, req.instance, 'export', req.waitSeconds, async () => write(await planExport(ctx, req)));
}

export async function planExport(ctx: RepoContext, req: ExportRequest): Promise<ExportPlan> {
  ctx.catalog.requireInstance(req.instance);
  const backup = ctx.catalog.requireBackup(req.instance, req.backupId);
  if (!USABLE_STATUSES.has(backup.status)) {
    throw new PgkeepError('BACKUP_NOT_RESTORABLE', `backup ${backup.id} is ${backup.status} and cannot be exported`, 'choose an OK backup (see `pgkeep show`), or validate this one');
  }
  const chain = await loadChain(ctx, backup);
  const files = chain.targetFiles;
  for (const f of files) assertSafeRelativePath(f.path);
  const control = files.find((f) => f.path === 'global/pg_control');
  if (!control) throw new PgkeepError('BACKUP_CORRUPT', `backup ${backup.id} has no global/pg_control in its manifest`, 'validate the backup; export another one');

  const root = files.find((f) => f.kind === 'dir');
  const rootOwner = { uid: root?.uid ?? process.getuid?.() ?? 0, gid: root?.gid ?? process.getgid?.() ?? 0 };
  const header = (e: FileEntry, extra: Partial<Headers>): Headers => ({
    name: e.path,
    mode: e.mode & 0o7777,
    mtime: new Date(e.mtimeMs),
    uid: e.uid ?? rootOwner.uid,
    gid: e.gid ?? rootOwner.gid,
    ...extra,
  });
  const isTablespace = (e: FileEntry) => e.kind === 'symlink' && /^pg_tblspc\/[^/]+$/.test(e.path);

  // Directories, tablespaces among them, sorted so that a parent always precedes its children.
  const dirs = files.filter((e) => e.kind === 'dir' || isTablespace(e));
  const dirPaths = new Set(dirs.map((e) => e.path));
  const dirEntries: ArchiveEntry[] = dirs.map((e) => ({ header: header(e, { type: 'directory' }) }));
  for (const path of walDirectories(backup)) {
    if (dirPaths.has(path)) continue;
    dirEntries.push({ header: { name: path, type: 'directory', mode: 0o700, mtime: backup.startTime, uid: rootOwner.uid, gid: rootOwner.gid } });
  }
  dirEntries.sort((a, b) => compare(a.header.name, b.header.name));
  // As GNU tar writes them: a directory's name ends with '/'.
  for (const d of dirEntries) d.header.name = `${d.header.name}/`;

  // Other links (none in a usual data directory) stay links, as restore recreates them.
  const links: ArchiveEntry[] = files
    .filter((e) => e.kind === 'symlink' && !isTablespace(e))
    .map((e) => ({ header: header(e, { type: 'symlink', linkname: e.linkTarget ?? '', mode: 0o777 }) }));

  // tablespace_map would make the server replace each pg_tblspc/<oid> directory with a link to
  // the original location at start-up (and fail, the directory not being empty).
  const regular = files.filter((e) => (e.kind === 'data' || e.kind === 'file' || e.kind === 'wal') && e !== control && e.path !== 'tablespace_map');
  regular.sort((a, b) => compare(a.path, b.path));
  const hasTablespaces = dirs.some((e) => /^pg_tblspc\/[^/]+$/.test(e.path));
  const fileEntries: ArchiveEntry[] = regular.map((e) => {
    const extra = hasTablespaces && e.path === AUTO_CONF ? IN_PLACE_SETTING : undefined;
    return { header: header(e, { type: 'file', size: e.size + (extra?.length ?? 0) }), plan: chain.plan(e), extra };
  });
  if (hasTablespaces && !regular.some((e) => e.path === AUTO_CONF)) {
    const at = fileEntries.findIndex((f) => compare(f.header.name, AUTO_CONF) > 0);
    const added = { header: { name: AUTO_CONF, type: 'file' as const, size: IN_PLACE_SETTING.length, mode: 0o600, mtime: backup.startTime, ...rootOwner }, extra: IN_PLACE_SETTING };
    fileEntries.splice(at < 0 ? fileEntries.length : at, 0, added);
  }
  fileEntries.push({ header: header(control, { type: 'file', size: control.size }), plan: chain.plan(control) });

  return { backup, chain: chain.members.map((b) => b.id), entries: [...dirEntries, ...links, ...fileEntries] };
}

/**
 * Writes the archive of `plan` to `sink`, and resolves once every byte has been handed to it (the
 * caller ends or closes the sink). On failure the archive is left incomplete: the file being
 * written is cut before its last chunk and no end-of-archive marker follows, so `tar -x` reports
 * an unexpected end rather than unpacking a wrong file.
 */
export async function writeExport(ctx: RepoContext, plan: ExportPlan, sink: Writable, options: ExportOptions): Promise<ExportResult> {
  const { backup } = plan;
  const { threads, progress = silentProgress } = options;
  const files = plan.entries.filter((e) => e.plan !== undefined);
  const deep = files.filter((e) => rebuildsInPlace(e.plan!)).length;
  const scratch = deep === 0 ? undefined : await prepareScratchFiles(options.scratchDir, deep, backup.id, MAX_OPEN_DELTAS);
  const pack = tarPack();
  // Whichever side fails first stops the other: a sink error (EPIPE, ENOSPC) destroys the pack,
  // which fails the entry being written; a bad file destroys the pack, which ends the pump.
  let sinkError: { error: unknown } | undefined;
  const onSinkError = (error: unknown) => {
    sinkError ??= { error };
    pack.destroy(error as Error);
  };
  sink.on('error', onSinkError);
  let archiveBytes = 0;
  const pump = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) {
      archiveBytes += chunk.length;
      if (!sink.write(chunk)) await drained(sink);
    }
  })();
  pump.catch(onSinkError);

  const isFile = (e: ArchiveEntry) => e.header.type === 'file';
  const ahead = new Map<ArchiveEntry, ReadAhead>();
  let nextToRead = 0;
  const readMore = () => {
    while (nextToRead < files.length && ahead.size < threads) {
      const e = files[nextToRead++]!;
      ahead.set(e, new ReadAhead(fileContent(ctx.store, backup.instance, e.plan!, backup.blockSize, scratch?.next), READ_AHEAD_BYTES));
    }
  };

  const bytesRead = files.reduce((n, e) => n + e.plan!.sources.reduce((m, src) => m + src.entry.storedSize, 0), 0);
  const result: ExportResult = { backup, chain: plan.chain, directories: 0, symlinks: 0, files: 0, bytes: 0, archiveBytes: 0, bytesRead, removedScratch: scratch?.removed ?? [] };
  const fileEntries = plan.entries.filter(isFile);
  progress.start(fileEntries.length, fileEntries.reduce((n, e) => n + (e.header.size ?? 0), 0));
  try {
    for (const entry of plan.entries) {
      if (!isFile(entry)) {
        await writeEntry(pack, entry.header);
        if (entry.header.type === 'directory') result.directories++;
        else result.symlinks++;
        continue;
      }
      if (entry.plan) {
        readMore();
        await writeEntry(pack, entry.header, ahead.get(entry)!.chunks(), entry.extra);
        ahead.delete(entry);
      } else {
        await writeEntry(pack, entry.header, undefined, entry.extra);
      }
      result.files++;
      result.bytes += entry.header.size ?? 0;
      progress.advance(1, entry.header.size ?? 0);
    }
    pack.finalize();
    await pump;
    progress.finish();
  } catch (e) {
    pack.destroy(e as Error);
    await pump.catch(() => undefined);
    await Promise.all([...ahead.values()].map((r) => r.cancel()));
    // The sink's own error says more than "pack stream destroyed", which it causes.
    throw sinkError ? sinkError.error : e;
  } finally {
    sink.off('error', onSinkError);
  }
  if (sinkError) throw sinkError.error;
  return { ...result, archiveBytes };
}

/** pg_wal's contents are not in a backup's directory list, but recovery needs its subdirectories. */
function walDirectories(backup: BackupRecord): string[] {
  return walDirectoriesToCreate(majorOf(backup.serverVersionNum));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One tar entry, content (if any) included, resolving once the pack has taken all of it. The last
 * chunk is held back until the content has been verified (size and checksum are known only at
 * its end), so that a file that fails verification never appears complete in the archive.
 * `extra` follows the content (header.size counts both).
 */
async function writeEntry(pack: Pack, header: Headers, content?: AsyncIterable<Buffer>, extra?: Buffer): Promise<void> {
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const stream = pack.entry(header, (err) => (err ? settle.reject(err) : settle.resolve()));
  // Its failures reach us through the callback above (and destroy the pack); an 'error' event
  // without a listener would end the process before the error could be reported.
  stream.on('error', () => undefined);
  if (content || extra) {
    try {
      const size = (header.size ?? 0) - (extra?.length ?? 0);
      let held: Buffer | undefined;
      let seen = 0;
      for await (const chunk of content ?? []) {
        seen += chunk.length;
        if (seen > size) throw new PgkeepError('BACKUP_CORRUPT', `${header.name} rebuilds to more than the ${size} bytes the manifest says`, 'validate the chain with `pgkeep validate`');
        if (held && !stream.write(held)) await drained(stream);
        held = chunk;
      }
      if (held && extra && !stream.write(held)) await drained(stream);
      stream.end((extra ?? held) ?? null);
    } catch (e) {
      stream.destroy(e as Error);
      await done.catch(() => undefined);
      throw e;
    }
  }
  await done;
}

interface Emitter {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** Waits for 'drain'; rejects if the stream errors or closes first. */
function drained(stream: Emitter): Promise<void> {
  return new Promise((resolve, reject) => {
    const listeners: Record<string, (...args: unknown[]) => void> = {
      drain: () => settle(resolve),
      error: (e) => settle(() => reject(e)),
      close: () => settle(() => reject(new PgkeepError('IO_ERROR', 'the output closed before the archive was complete'))),
    };
    const settle = (then: () => void) => {
      for (const [event, listener] of Object.entries(listeners)) stream.removeListener(event, listener);
      then();
    };
    for (const [event, listener] of Object.entries(listeners)) stream.on(event, listener);
  });
}

/**
 * Reads one file's content ahead of the writer, holding at most about `limit` bytes: the chunks
 * are copied, as the reconstruction reuses its buffer for the next chunk. Producer and consumer
 * never wait at the same time (the queue cannot be both full and empty), so one waiter slot does.
 */
class ReadAhead {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private cancelled = false;
  private waiter: (() => void) | undefined;
  private readonly filled: Promise<void>;

  constructor(source: AsyncGenerator<Buffer>, private readonly limit: number) {
    this.filled = this.fill(source);
  }

  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) {
        this.queued -= chunk.length;
        this.wake();
        yield chunk;
        continue;
      }
      if (this.ended) {
        if (this.failure) throw this.failure.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Stops reading (the source's finally blocks run) and waits until it has. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    this.wake();
    await this.filled;
  }

  private async fill(source: AsyncGenerator<Buffer>): Promise<void> {
    try {
      for await (const chunk of source) {
        if (this.cancelled) break;
        this.queue.push(Buffer.from(chunk));
        this.queued += chunk.length;
        this.wake();
        while (this.queued >= this.limit && !this.cancelled) await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    } catch (e) {
      this.failure = { error: e };
    }
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
