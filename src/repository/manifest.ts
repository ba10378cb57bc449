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

/** Write the manifest of `record` durably. Entries are sorted by path; duplicates are refused. */
export async function writeManifest(store: ByteStore, record: BackupRecord, entries: readonly FileEntry[]): Promise<void> {
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
  const push = async (obj: unknown): Promise<void> => {
    const line = `${JSON.stringify(obj)}\n`;
    batch.push(line);
    batchLength += line.length;
    if (batchLength >= WRITE_BATCH) await flush();
  };
  try {
    const version = sorted.some((e) => e.partSize !== undefined) ? MANIFEST_FORMAT_VERSION : FILE_FORMAT_VERSION;
    await push({ formatVersion: version, kind: MANIFEST_KIND, backup: backupRecordToJson(record) });
    for (const entry of sorted) await push(fileEntryToJson(entry));
    await flush();
    await out.write(Buffer.from(`${JSON.stringify({ end: true, files: sorted.length, xxh64: hasher.digestHex() })}\n`, 'utf8'));
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
  for await (const item of parseManifest(store, instance, id, generation)) {
    if (item.type === 'header') backup = item.backup;
    else files.push(item.entry);
  }
  // parseManifest always yields a header first or throws.
  return { backup: backup as BackupRecord, files };
}

/**
 * Stream a manifest's entries with flat memory. The trailer is checked only at the end: an
 * error thrown after some entries means none of them can be trusted.
 */
export async function* readManifestEntries(store: ByteStore, instance: string, id: string, generation = 0): AsyncGenerator<FileEntry> {
  for await (const item of parseManifest(store, instance, id, generation)) {
    if (item.type === 'entry') yield item.entry;
  }
}

type ManifestItem = { type: 'header'; backup: BackupRecord } | { type: 'entry'; entry: FileEntry };

async function* parseManifest(store: ByteStore, instance: string, id: string, generation: number): AsyncGenerator<ManifestItem> {
  await initHashing();
  const key = manifestKey(instance, id, generation);
  const hasher = createHasher();
  let lineNo = 0;
  let files = 0;
  let previousPath: string | undefined;
  let trailer: JsonFields | undefined;
  try {
    for await (const { bytes, terminated } of splitLines(store.openRead(key), key)) {
      lineNo++;
      const where = `${key} line ${lineNo}`;
      if (trailer) throw corruptFile(key, `line ${lineNo} follows the trailer`);
      const obj = parseJsonObject(bytes.toString('utf8'), where);
      if (lineNo === 1) {
        checkFormatVersion(obj, key, MANIFEST_FORMAT_VERSION);
        const header = new JsonFields(obj, where);
        if (header.string('kind') !== MANIFEST_KIND) throw corruptFile(key, 'line 1 is not a pgkeep manifest header');
        const backup = backupRecordFromJson(header.object('backup').obj, `${where} (backup)`);
        if (backup.id !== id || backup.instance !== instance) throw corruptFile(key, `it describes backup ${backup.id} of instance ${backup.instance}`);
        hasher.update(bytes);
        hasher.update(NEWLINE);
        yield { type: 'header', backup };
        continue;
      }
      if (obj.end === true) {
        trailer = new JsonFields(obj, where);
        continue;
      }
      if (!terminated) throw corruptFile(key, `line ${lineNo} is cut short (truncated?)`);
      hasher.update(bytes);
      hasher.update(NEWLINE);
      const entry = fileEntryFromJson(obj, where);
      if (previousPath !== undefined && comparePaths(previousPath, entry.path) >= 0) {
        throw corruptFile(key, `line ${lineNo}: ${entry.path} is out of order or repeated`);
      }
      previousPath = entry.path;
      files++;
      yield { type: 'entry', entry };
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

const NEWLINE = Buffer.from('\n');

/** Lines of a byte stream, without their '\n'; `terminated` is false only for a last line without one. */
async function* splitLines(source: AsyncIterable<Buffer>, key: string): AsyncGenerator<{ bytes: Buffer; terminated: boolean }> {
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      yield { bytes: buf.subarray(start, nl), terminated: true };
      start = nl + 1;
    }
    carry = buf.subarray(start);
    if (carry.length > MAX_LINE) throw corruptFile(key, `a line is longer than ${MAX_LINE} bytes`);
  }
  if (carry.length > 0) yield { bytes: carry, terminated: false };
}

function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
