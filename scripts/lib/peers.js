// The peers that need no set-up: pg_basebackup (plain, and tar with gzip), cp -a, and the
// server's floor: psql doing only what any backup with its WAL must ask of the server.
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measure, dirBytes } from './measure.js';
import { postgresOsUser } from './throwaway-cluster.js';

const pgBasebackupBin = '/usr/lib/postgresql/15/bin/pg_basebackup';
const psqlBin = '/usr/lib/postgresql/15/bin/psql';

/**
 * pg_basebackup with the WAL streamed into the backup (-X stream, like pgkeep --stream), a fast
 * checkpoint, page checksums verified by the server, and its default fsync at the end.
 */
export function pgBasebackup(c, target, { tarGzip = false } = {}) {
  const m = measure(pgBasebackupBin, ['-D', target, ...(tarGzip ? ['-Ft', '-z'] : []), '-X', 'stream', '-c', 'fast', ...c.connectionArgs]);
  return { ...m, storedBytes: dirBytes(target) };
}

/** cp -a of the (running) data directory: the raw copy speed of this disk; no fsync. */
export function copyDataDirectory(c, target) {
  const m = measure('cp', ['-a', c.pgdata, target]);
  return { ...m, storedBytes: dirBytes(target) };
}

/**
 * The floor under any backup of this server with its WAL, whatever tool takes it: one psql session
 * that creates a temporary slot, starts a backup with a fast checkpoint, stops it without waiting
 * for the archive, and copies the WAL segments between start and stop out of pg_wal with cp, each
 * then fsynced (as pgkeep --stream does; `sync FILE` is fsync). No data file is read, no catalog
 * or manifest kept. psql 15 speaks to PostgreSQL 15-17 alike; needs pg_backup_start (15+).
 * Returns a measure() result; `target` is emptied and refilled on each call.
 */
export function serverFloor(c, target) {
  const user = postgresOsUser();
  rmSync(target, { recursive: true, force: true });
  mkdirSync(join(target, 'wal'), { recursive: true });
  const copyWal = join(target, 'copy-wal.sh');
  // Segment names sort as their positions do, within a timeline; `*.*` are .partial, .history and
  // .backup files, which are not the backup's segments.
  writeFileSync(copyWal, [
    'set -e',
    'for f in "$PGDATA"/pg_wal/[0-9A-F]*; do',
    '  n=${f##*/}',
    '  case $n in *.*) continue;; esac',
    '  if [[ ! "$n" < "$FIRST" && ! "$n" > "$LAST" ]]; then cp "$f" "$TARGET/wal/"; fi',
    'done',
    'sync "$TARGET"/wal/*',
    '',
  ].join('\n'));
  const script = join(target, 'floor.sql');
  writeFileSync(script, [
    '\\set ON_ERROR_STOP 1',
    "SELECT pg_create_physical_replication_slot('bench_floor', true, true) \\g /dev/null",
    "SELECT pg_walfile_name(pg_backup_start('bench floor', true)) AS first \\gset",
    'SELECT pg_walfile_name(lsn - 1) AS last FROM pg_backup_stop(false) \\gset',
    '\\setenv FIRST :first',
    '\\setenv LAST :last',
    `\\! bash ${copyWal}`,
    '',
  ].join('\n'));
  for (const p of [target, join(target, 'wal'), copyWal, script]) {
    chmodSync(p, 0o755);
    if (user) chownSync(p, user.uid, user.gid);
  }
  return measure(psqlBin, ['-X', '-q', ...c.connectionArgs, '-d', 'postgres', '-f', script], { env: { PGDATA: c.pgdata, TARGET: target } });
}
