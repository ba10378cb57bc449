// The peers that need no set-up: pg_basebackup (plain, and tar with gzip), cp -a, the server's
// floor (psql doing only what any backup with its WAL must ask of the server), and PostgreSQL
// 17's own full and incremental backups written by the server.
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

/**
 * PostgreSQL 17's own backup, full or incremental, written by the server into `target` (which
 * must not exist): what `pg_basebackup --target=server:DIR -X fetch -c fast [--incremental=M]`
 * asks. PostgreSQL 17's pg_basebackup is not installed here (no Debian package, and the npm
 * builds carry the server only), but psql 15 sends the same replication commands: for an
 * incremental backup UPLOAD_MANIFEST, the earlier backup's backup_manifest on its standard input,
 * then BASE_BACKUP with INCREMENTAL in the same session. The server reads only the blocks its WAL
 * summaries name for each relation file it sends incrementally. The WAL the backup needs goes
 * into its tar, without waiting for the archive (WAIT false, as pg_basebackup asks with -X). The
 * throwaway cluster runs with fsync off, under which the server does not fsync what it writes,
 * so the timed command ends with `sync` of the files written, as pgkeep fsyncs its own. psql 15
 * exits with status 1 after BASE_BACKUP's copy stream though the server finished; the backup
 * counts as done when the server has written its backup_manifest, which it does last (an error
 * leaves none, and psql's message shows in the thrown error).
 * Returns a measure() result with storedBytes; the manifest is `${target}/backup_manifest`.
 */
export function serverTargetBackup(c, target, { incrementalFrom } = {}) {
  rmSync(target, { recursive: true, force: true });
  const options = [...(incrementalFrom ? ['INCREMENTAL'] : []), "TARGET 'server'", `TARGET_DETAIL '${target}'`, "CHECKPOINT 'fast'", "MANIFEST 'yes'", 'WAL true', 'WAIT false'];
  const psql = [psqlBin, '-X', '-q', ...c.connectionArgs, '-d', 'dbname=postgres replication=database', ...(incrementalFrom ? ['-c', 'UPLOAD_MANIFEST'] : []), '-c', `BASE_BACKUP (${options.join(', ')})`];
  const quoted = psql.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const input = incrementalFrom ? join(incrementalFrom, 'backup_manifest') : '/dev/null';
  const m = measure('/bin/sh', ['-c', `${quoted} < "$1" > /dev/null; test -s "$2/backup_manifest" && sync "$2"/*`, 'sh', input, target]);
  return { ...m, storedBytes: dirBytes(target) };
}
