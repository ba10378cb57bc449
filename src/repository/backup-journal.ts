/**
 * resume.jsonl: the progress journal of a backup being written (docs/resume.md). It says which
 * stored files of the backup are complete, so that an interrupted backup can be resumed.
 *
 *   line 1     <xxh64> {"formatVersion":1,"kind":"pgkeep-backup-journal","attempt":{...}}
 *   lines 2..  <xxh64> {FileEntry, as a manifest line}
 *
 * Every line is self-checking: 16 hex digits of xxh64 over the JSON text that follows the
 * space. Lines are appended in batches, each batch written and fdatasync'ed at once (at most
 * FLUSH_INTERVAL_MS after its first line, or when FLUSH_LINES lines are waiting); a line is only
 * ever appended after its stored file was committed (renamed into place) and made durable (by
 * the creator's `beforeBatch`, which fsyncs the batch's files and their directories), so every
 * line that reads back names a complete file. A kill or a full disk can leave a torn last line:
 * reading stops at the first line that is cut short or fails its checksum, and keeps what came
 * before.
 *
 * Design note. This is the one repository file written by appending, which ByteStore (whole
 * objects, staged then committed) does not offer: it is written here with node:fs under the
 * repository root, as locks are. An object store would write it as numbered parts instead.
 * Reading goes through the ByteStore.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FileEntry } from '../core/backup-types.js';
import { BACKUP_MODES, COMPRESS_ALGS } from '../core/backup-types.js';
import { formatLsn } from '../core/lsn.js';
import type { ResumeAttempt } from '../core/resume-rules.js';
import { fromIoError } from '../errors.js';
import { isMissingObjectError, type ByteStore } from '../storage/byte-store.js';
import { writeFully } from '../storage/write-fully.js';
import { giveFile, ownerForNewPaths } from '../storage/repository-owner.js';
import { fileEntryFromJson, fileEntryToJson } from './file-entry-json.js';
import { checkFormatVersion, FILE_FORMAT_VERSION } from './format-version.js';
import { hashHex } from './hash.js';
import { corruptFile, JsonFields, parseJsonObject } from './json-fields.js';
import { backupJournalKey } from './layout.js';

const JOURNAL_KIND = 'pgkeep-backup-journal';
/** A batch is written at most this long after its first line... */
export const FLUSH_INTERVAL_MS = 1000;
/** ...or as soon as this many lines wait. */
export const FLUSH_LINES = 1000;

export interface BackupJournal {
  attempt: ResumeAttempt;
  /** Complete stored files by path (the last line wins, though a path is written once). */
  entries: Map<string, FileEntry>;
  /** True when reading stopped at a torn or damaged line. */
  torn: boolean;
}

/**
 * Run before a batch of lines is written, with their entries: a backup's copy makes those stored
 * files durable here (ByteStore.syncObjects), so that no line can outlive its file.
 */
export type BeforeBatch = (entries: readonly FileEntry[]) => Promise<void>;

/** Appends finished entries to a new journal. Safe to call `add` from parallel workers. */
export class BackupJournalWriter {
  private pending: string[] = [];
  /** The entries of `pending`, for `beforeBatch`. */
  private pendingEntries: FileEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  private written = 0;
  /** Bytes in the file: where the next line goes (writes are positional, see writeFully). */
  private fileBytes = 0;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    private readonly beforeBatch: BeforeBatch,
  ) {}

  /** Creates the journal of `attempt`'s backup with its header, durably (file and directory). */
  static async create(repoRoot: string, attempt: ResumeAttempt, beforeBatch: BeforeBatch): Promise<BackupJournalWriter> {
    const path = join(repoRoot, ...backupJournalKey(attempt.instance, attempt.backupId).split('/'));
    let fh: FileHandle;
    try {
      fh = await open(path, 'wx', 0o600);
    } catch (e) {
      throw fromIoError(e, 'create', path);
    }
    const w = new BackupJournalWriter(fh, path, beforeBatch);
    try {
      await giveFile(ownerForNewPaths(repoRoot), fh, path);
      const header = Buffer.from(journalLine({ formatVersion: FILE_FORMAT_VERSION, kind: JOURNAL_KIND, attempt: attemptToJson(attempt) }), 'utf8');
      await writeFully(fh, header, 0);
      w.fileBytes = header.length;
      await fh.sync();
      const dir = await open(dirname(path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw fromIoError(e, 'write', path);
    }
    return w;
  }

  /** Entries appended and synced so far. */
  get entriesWritten(): number {
    return this.written;
  }

  /** Queues `entry`, whose stored file is already committed; writes the batch when it is due. */
  async add(entry: FileEntry): Promise<void> {
    if (this.failure) throw this.failure.error;
    if (this.closed) return;
    this.pending.push(journalLine(fileEntryToJson(entry)));
    this.pendingEntries.push(entry);
    if (this.pending.length >= FLUSH_LINES) {
      await this.flush();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.flush().catch(() => undefined);
      }, FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Writes and syncs every queued line. Batches never interleave. */
  flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const next = this.chain.then(async () => {
      if (this.failure) throw this.failure.error;
      if (this.pending.length === 0) return;
      const lines = this.pending;
      const entries = this.pendingEntries;
      this.pending = [];
      this.pendingEntries = [];
      try {
        await this.beforeBatch(entries);
        const bytes = Buffer.from(lines.join(''), 'utf8');
        await writeFully(this.fh, bytes, this.fileBytes);
        this.fileBytes += bytes.length;
        await this.fh.datasync();
      } catch (e) {
        this.failure = { error: fromIoError(e, 'append to', this.path) };
        throw this.failure.error;
      }
      this.written += lines.length;
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Flushes what is queued and closes the file; later `add` calls are ignored. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
  }
}

/**
 * Reads a backup's journal: undefined when it has none. Entries stop at the first torn or
 * damaged line. A damaged header (or a newer format) throws, naming the file.
 */
export async function readBackupJournal(store: ByteStore, instance: string, id: string): Promise<BackupJournal | undefined> {
  const key = backupJournalKey(instance, id);
  let bytes: Buffer;
  try {
    bytes = await store.read(key);
  } catch (e) {
    if (isMissingObjectError(e)) return undefined;
    throw e;
  }
  let attempt: ResumeAttempt | undefined;
  const entries = new Map<string, FileEntry>();
  let torn = false;
  let start = 0;
  let lineNo = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(10, start);
    const text = checkedLine(nl === -1 ? undefined : bytes.subarray(start, nl));
    lineNo++;
    if (text === undefined) {
      if (lineNo === 1) throw corruptFile(key, 'the header line is cut short or fails its checksum');
      torn = true;
      break;
    }
    start = nl + 1;
    const where = `${key} line ${lineNo}`;
    const obj = parseJsonObject(text, where);
    if (lineNo === 1) {
      checkFormatVersion(obj, key);
      const header = new JsonFields(obj, where);
      if (header.string('kind') !== JOURNAL_KIND) throw corruptFile(key, 'line 1 is not a pgkeep backup journal header');
      attempt = attemptFromJson(header.object('attempt'));
      if (attempt.backupId !== id || attempt.instance !== instance) throw corruptFile(key, `it describes backup ${attempt.backupId} of instance ${attempt.instance}`);
      continue;
    }
    const entry = fileEntryFromJson(obj, where);
    entries.set(entry.path, entry);
  }
  if (!attempt) throw corruptFile(key, 'the journal is empty');
  return { attempt, entries, torn };
}

/** `<xxh64> <json>\n` */
function journalLine(obj: unknown): string {
  const json = JSON.stringify(obj);
  return `${hashHex(Buffer.from(json, 'utf8'))} ${json}\n`;
}

/** The JSON text of a complete line whose checksum holds, else undefined. */
function checkedLine(line: Buffer | undefined): string | undefined {
  if (line === undefined || line.length < 18 || line[16] !== 0x20) return undefined;
  const json = line.subarray(17);
  if (hashHex(json) !== line.subarray(0, 16).toString('latin1')) return undefined;
  return json.toString('utf8');
}

function attemptToJson(a: ResumeAttempt): Record<string, unknown> {
  return {
    backupId: a.backupId,
    instance: a.instance,
    mode: a.mode,
    parentId: a.parentId,
    startLsn: formatLsn(a.startLsn),
    timeline: a.timeline,
    systemIdentifier: a.systemIdentifier,
    compressAlg: a.compressAlg,
    compressLevel: a.compressLevel,
    blockSize: a.blockSize,
    resumedFrom: a.resumedFrom,
  };
}

function attemptFromJson(f: JsonFields): ResumeAttempt {
  return {
    backupId: f.string('backupId'),
    instance: f.string('instance'),
    mode: f.oneOf('mode', BACKUP_MODES),
    parentId: f.nullableString('parentId'),
    startLsn: f.lsn('startLsn'),
    timeline: f.count('timeline'),
    systemIdentifier: f.string('systemIdentifier'),
    compressAlg: f.oneOf('compressAlg', COMPRESS_ALGS),
    compressLevel: f.integer('compressLevel'),
    blockSize: f.count('blockSize'),
    resumedFrom: f.nullableString('resumedFrom'),
  };
}
