/**
 * manifest.jsonl: the immutable, self-describing list of a backup's files.
 *
 *   line 1     {"formatVersion":1,"kind":"pgkeep-manifest","backup":{...BackupRecord...}}
 *   lines 2..  one FileEntry per line, sorted by path (byte order of UTF-16 code units), unique
 *   last line  {"end":true,"files":N,"xxh64":"<xxh64 of every preceding byte>"}
 *
 * The trailer makes a truncated or edited manifest detectable without anything else; the line
 * format lets a reader stream a manifest of millions of files with flat memory. Written once,
 * durably, before the backup is marked DONE in backup.json.
 */
import type { BackupRecord, FileEntry } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import { isMissingObjectError, type ByteStore } from '../storage/byte-store.js';
import { backupRecordFromJson, backupRecordToJson } from './backup-record-json.js';
import { fileEntryFromJson, fileEntryToJson } from './file-entry-json.js';
import { checkFormatVersion, FILE_FORMAT_VERSION, MANIFEST_FORMAT_VERSION } from './format-version.js';
import { createHasher, initHashing } from './hash.js';
import { corruptFile, JsonFields, parseJsonObject } from './json-fields.js';
import { manifestKey } from './layout.js';

const MANIFEST_KIND = 'pgkeep-manifest';
/** Lines are batched into writes of about this size. */
const WRITE_BATCH = 256 * 1024;
/** No honest line comes near this; a longer one means a damaged file, not a reason to eat memory. */
const MAX_LINE = 16 * 1024 * 1024;

export interface Manifest {
  backup: BackupRecord;
  files: FileEntry[];
}

/**
 * Write the manifest of `record` durably. Entries are sorted by path; duplicates are refused.
 * `commitAfter`: the manifest is written to its temporary file at once, but put in place only
 * once this settles (the stored files it names being made durable meanwhile); if it rejects,
 * the manifest is abandoned and its error thrown.
 */
export async function writeManifest(store: ByteStore, record: BackupRecord, entries: readonly FileEntry[], commitAfter?: Promise<unknown>): Promise<void> {
  commitAfter?.catch(() => undefined); // awaited before the commit; a failure before it is the one thrown
  await initHashing();
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]?.path === sorted[i - 1]?.path) {
      throw new PgkeepError('INTERNAL', `manifest of backup ${record.id} would list ${sorted[i]?.path} twice`);
    }
  }
  const out = await store.openWrite(manifestKey(record.instance, record.id, record.generation));
  const hasher = createHasher();
  let batch: string[] = [];
  let batchLength = 0;
  const flush = async (): Promise<void> => {
    const bytes = Buffer.from(batch.join(''), 'utf8');
    batch = [];
    batchLength = 0;
    hasher.update(bytes);
    await out.write(bytes);
  };
  // Lines are added in a plain loop, awaiting only a full batch's write: an await per line
  // was 10-15 ms of a backup's manifest, in a process whose code is still cold.
  const add = (obj: unknown): boolean => {
    const line = `${JSON.stringify(obj)}\n`;
    batch.push(line);
    batchLength += line.length;
    return batchLength >= WRITE_BATCH;
  };
  try {
    const version = sorted.some((e) => e.partSize !== undefined) ? MANIFEST_FORMAT_VERSION : FILE_FORMAT_VERSION;
    add({ formatVersion: version, kind: MANIFEST_KIND, backup: backupRecordToJson(record) });
    for (const entry of sorted) {
      if (add(fileEntryToJson(entry))) await flush();
    }
    await flush();
    await out.write(Buffer.from(`${JSON.stringify({ end: true, files: sorted.length, xxh64: hasher.digestHex() })}\n`, 'utf8'));
    await commitAfter;
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** Read and fully verify a manifest (trailer checksum, file count, every entry). */
export async function readManifest(store: ByteStore, instance: string, id: string, generation = 0): Promise<Manifest> {
  let backup: BackupRecord | undefined;
  const files: FileEntry[] = [];
  for await (const batch of parseManifest(store, instance, id, generation)) {
    backup ??= batch.header;
    for (const entry of batch.entries) files.push(entry);
  }
  // parseManifest always yields the header first or throws.
  return { backup: backup as BackupRecord, files };
}

/**
 * Stream a manifest's entries with flat memory. The trailer is checked only at the end: an
 * error thrown after some entries means none of them can be trusted.
 */
export async function* readManifestEntries(store: ByteStore, instance: string, id: string, generation = 0): AsyncGenerator<FileEntry> {
  for await (const batch of parseManifest(store, instance, id, generation)) yield* batch.entries;
}

/** The lines of one chunk read: the header when it is among them, and the entries. */
interface ManifestBatch {
  header: BackupRecord | undefined;
  entries: FileEntry[];
}

/**
 * The manifest, checked as it is read, a chunk of lines at a time. Each backup reads its parent's
 * manifest before it can start, in a process that has compiled nothing yet: a chunk's lines are
 * decoded, parsed and hashed together rather than one by one through async iteration (a third of
 * the time, for a manifest of 1,000 files).
 */
async function* parseManifest(store: ByteStore, instance: string, id: string, generation: number): AsyncGenerator<ManifestBatch> {
  await initHashing();
  const key = manifestKey(instance, id, generation);
  const hasher = createHasher();
  let lineNo = 0;
  let files = 0;
  let previousPath: string | undefined;
  let trailer: JsonFields | undefined;
  let carry: Buffer = Buffer.alloc(0);
  const parseLines = (buf: Buffer, end: number, terminated: boolean): ManifestBatch => {
    const batch: ManifestBatch = { header: undefined, entries: [] };
    // '\n' is a byte of its own in UTF-8: the range decodes as one string and splits on it.
    const lines = buf.toString('utf8', 0, end).split('\n');
    if (terminated) lines.pop(); // the empty string after the last '\n'
    let trailerHere = false;
    for (const text of lines) {
      lineNo++;
      const where = `${key} line ${lineNo}`;
      if (trailer) throw corruptFile(key, `line ${lineNo} follows the trailer`);
      const obj = parseJsonObject(text, where);
      if (lineNo === 1) {
        checkFormatVersion(obj, key, MANIFEST_FORMAT_VERSION);
        const header = new JsonFields(obj, where);
        if (header.string('kind') !== MANIFEST_KIND) throw corruptFile(key, 'line 1 is not a pgkeep manifest header');
        const backup = backupRecordFromJson(header.object('backup').obj, `${where} (backup)`);
        if (backup.id !== id || backup.instance !== instance) throw corruptFile(key, `it describes backup ${backup.id} of instance ${backup.instance}`);
        batch.header = backup;
      } else if (obj.end === true) {
        trailer = new JsonFields(obj, where);
        trailerHere = true;
      } else {
        if (!terminated) throw corruptFile(key, `line ${lineNo} is cut short (truncated?)`);
        const entry = fileEntryFromJson(obj, where);
        if (previousPath !== undefined && comparePaths(previousPath, entry.path) >= 0) {
          throw corruptFile(key, `line ${lineNo}: ${entry.path} is out of order or repeated`);
        }
        previousPath = entry.path;
        files++;
        batch.entries.push(entry);
      }
    }
    // Every byte before the trailer is hashed. A line after the trailer throws above, so the
    // trailer is the last line here when it is here: it begins after the '\n' before its own.
    const hashedEnd = trailerHere ? buf.lastIndexOf(10, end - (terminated ? 2 : 1)) + 1 : end;
    if (hashedEnd > 0) hasher.update(buf.subarray(0, hashedEnd));
    return batch;
  };
  try {
    for await (const chunk of store.openRead(key)) {
      const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const lastNewline = buf.lastIndexOf(10);
      if (lastNewline === -1) {
        carry = buf;
      } else {
        const batch = parseLines(buf, lastNewline + 1, true);
        carry = buf.subarray(lastNewline + 1);
        if (batch.header !== undefined || batch.entries.length > 0) yield batch;
      }
      if (carry.length > MAX_LINE) throw corruptFile(key, `a line is longer than ${MAX_LINE} bytes`);
    }
    if (carry.length > 0) {
      const batch = parseLines(carry, carry.length, false);
      if (batch.header !== undefined || batch.entries.length > 0) yield batch;
    }
  } catch (e) {
    if (isMissingObjectError(e)) throw corruptFile(key, 'the manifest is missing');
    throw e;
  }
  if (lineNo === 0) throw corruptFile(key, 'the manifest is empty');
  if (!trailer) throw corruptFile(key, 'the trailer line is missing (truncated?)');
  const count = trailer.count('files');
  const expected = trailer.string('xxh64');
  if (count !== files) throw corruptFile(key, `the trailer counts ${count} files, the manifest lists ${files}`);
  const actual = hasher.digestHex();
  if (actual !== expected) throw corruptFile(key, `checksum is ${actual}, the trailer says ${expected}`);
}

function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
