/**
 * Lists what a backup copies from a data directory: every file and directory, with the
 * exclusions of pgdata-rules.ts applied, tablespaces followed through their pg_tblspc links.
 *
 * Files can appear and vanish while a live cluster is walked (a table dropped, a temp file
 * removed): an entry that disappears between readdir and lstat is skipped, as pg_basebackup does;
 * WAL replay restores whatever the files missed.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, fromIoError, PgkeepError } from '../errors.js';
import { EXCLUDED_DIRECTORY_CONTENTS, filterDatabaseDirectory, isDatabaseDirectory, isExcludedFileName } from './pgdata-rules.js';
import { parseRelationPath } from './relation-file.js';

export interface SourceEntry {
  /** '/'-separated path relative to the data directory. */
  path: string;
  /** Absolute path to read from (tablespace files resolve through their link). */
  absPath: string;
  kind: 'data' | 'file' | 'dir' | 'symlink';
  size: number;
  mode: number;
  mtimeMs: number;
  linkTarget?: string;
}

export interface PgdataOwner {
  uid: number;
  gid: number;
}

export async function readPgdataOwner(pgdata: string): Promise<PgdataOwner> {
  try {
    const s = await stat(pgdata);
    return { uid: s.uid, gid: s.gid };
  } catch (e) {
    throw pgdataError(e, pgdata);
  }
}

/** Throws PGDATA_NOT_FOUND unless `pgdata` looks like a data directory (PG_VERSION and global/pg_control). */
export async function assertDataDirectory(pgdata: string): Promise<void> {
  try {
    const s = await stat(pgdata);
    if (!s.isDirectory()) throw new PgkeepError('PGDATA_NOT_FOUND', `${pgdata} is not a directory`, 'pass the cluster\'s data directory with -D');
    await stat(join(pgdata, 'PG_VERSION'));
    await stat(join(pgdata, 'global', 'pg_control'));
  } catch (e) {
    throw pgdataError(e, pgdata);
  }
}

function pgdataError(e: unknown, pgdata: string): PgkeepError {
  if (e instanceof PgkeepError) return e;
  if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
    return new PgkeepError('PGDATA_NOT_FOUND', `${pgdata} is not a PostgreSQL data directory (no PG_VERSION or global/pg_control)`, 'pass the cluster\'s data directory with -D (SHOW data_directory tells)');
  }
  return fromIoError(e, 'read', pgdata);
}

/** Walks the data directory; entries come out sorted by path, directories before their contents. */
export async function walkPgdata(pgdata: string): Promise<SourceEntry[]> {
  const out: SourceEntry[] = [];
  await walkDirectory(pgdata, '', out);
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/**
 * Names lstat'ed between two turns of the event loop. readdir and lstat are synchronous calls:
 * on a local file system each takes a few microseconds, where a trip through libuv's thread pool
 * costs tens (a 1,000-file data directory is walked in 5-10 ms, against 23-63 ms with 16 lstat
 * calls in flight; docs/performance.md). Yielding between batches keeps the server connection
 * and the progress display served while a directory of many thousand files is listed.
 */
const STATS_PER_TURN = 256;

/** lstat of every name in `dir`, in order; undefined for a name that vanished since readdir. */
async function lstatAll(dir: string, names: readonly string[]): Promise<(Stats | undefined)[]> {
  const out: (Stats | undefined)[] = new Array<Stats | undefined>(names.length);
  for (let i = 0; i < names.length; i++) {
    if (i > 0 && i % STATS_PER_TURN === 0) await nextTurn();
    const absPath = join(dir, names[i]!);
    try {
      out[i] = lstatSync(absPath);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw fromIoError(e, 'stat', absPath);
    }
  }
  return out;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function walkDirectory(absDir: string, relDir: string, out: SourceEntry[]): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(absDir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' && relDir !== '') return; // a database dropped mid-walk
    throw fromIoError(e, 'list', absDir);
  }
  const isTop = relDir === '';
  if (isDatabaseDirectory(relDir)) names = filterDatabaseDirectory(names);

  const stats = await lstatAll(absDir, names);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const st = stats[i];
    if (!st) continue;
    const relPath = isTop ? name : `${relDir}/${name}`;
    const absPath = join(absDir, name);

    if (st.isDirectory() || (st.isSymbolicLink() && isTop && name === 'pg_wal')) {
      if (!st.isDirectory() && !isTop) continue;
      out.push({ path: relPath, absPath, kind: 'dir', size: 0, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs });
      // Excluded directories are recreated empty on restore; their contents are not copied.
      if (isTop && EXCLUDED_DIRECTORY_CONTENTS.has(name)) continue;
      await walkDirectory(absPath, relPath, out);
      continue;
    }

    if (st.isSymbolicLink()) {
      const target = await readlink(absPath);
      if (relDir === 'pg_tblspc') {
        // A tablespace: record the link, then copy its contents as if they lived under the link.
        let dirStat;
        try {
          dirStat = await stat(absPath);
        } catch (e) {
          throw new PgkeepError('IO_ERROR', `tablespace link ${relPath} points to ${target}, which cannot be read`, 'check the tablespace location', { cause: e });
        }
        out.push({ path: relPath, absPath, kind: 'symlink', size: 0, mode: dirStat.mode & 0o7777, mtimeMs: dirStat.mtimeMs, linkTarget: target });
        await walkDirectory(absPath, relPath, out);
      } else {
        out.push({ path: relPath, absPath, kind: 'symlink', size: 0, mode: 0o777, mtimeMs: st.mtimeMs, linkTarget: target });
      }
      continue;
    }

    if (!st.isFile()) continue; // sockets, fifos: nothing a restore needs
    if (isExcludedFileName(name, isTop)) continue;
    const kind = parseRelationPath(relPath) ? 'data' : 'file';
    out.push({ path: relPath, absPath, kind, size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs });
  }
}
