// pgBackRest as a benchmark peer: installed from Debian's packages when missing, configured in a
// throwaway repository beside the cluster (its own config file, nothing in /etc), run as the
// postgres OS user like PostgreSQL's archive_command runs it.
//
// pgBackRest has no streaming mode: a backup is consistent only with the WAL from its start to
// its stop, which it takes from its archive. So, for a like-for-like comparison with
// `pgkeep backup --stream` (whose backup carries that WAL), the cluster archives through
// `pgbackrest archive-push` while pgBackRest's backups run, with archive-check=y (the backup
// waits until its last segment is archived) and archive-copy=y (that WAL is copied into the
// backup, which can then be restored without the archive, as pgkeep's can).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measure } from './measure.js';
import { runAsPostgres } from './throwaway-cluster.js';

/** The installed version ('2.45'), installing the Debian package when missing; or { skip: reason }. */
export function ensurePgbackrest() {
  const version = () => {
    const r = spawnSync('pgbackrest', ['version'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim().replace(/^pgBackRest\s+/, '') : undefined;
  };
  let v = version();
  if (v) return { version: v };
  if (process.getuid?.() !== 0) return { skip: 'pgbackrest is not installed (install it with: apt-get install -y pgbackrest)' };
  console.error('pgbackrest is not installed: installing it (apt-get install -y pgbackrest)');
  const r = spawnSync('apt-get', ['install', '-y', '-q', 'pgbackrest'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  v = r.status === 0 ? version() : undefined;
  return v ? { version: v } : { skip: 'pgbackrest could not be installed (apt-get install -y pgbackrest failed; try apt-get update first)' };
}

export class PgbackrestRepo {
  /** @param c a started ThrowawayCluster; the repository, logs and locks go under c.work. */
  constructor(c, { processMax = 2 } = {}) {
    this.c = c;
    this.dir = join(c.work, 'pgbackrest');
    this.repoPath = join(this.dir, 'repo');
    this.config = join(this.dir, 'pgbackrest.conf');
    for (const d of ['repo', 'log', 'lock', 'spool']) runAsPostgres('mkdir', ['-p', join(this.dir, d)]);
    const conf = [
      '[global]',
      `repo1-path=${this.repoPath}`,
      `log-path=${join(this.dir, 'log')}`,
      `lock-path=${join(this.dir, 'lock')}`,
      `spool-path=${join(this.dir, 'spool')}`,
      'log-level-console=warn',
      'log-level-file=off',
      `process-max=${processMax}`,
      'start-fast=y',
      'archive-check=y',
      'archive-copy=y',
      'compress-type=none',
      '',
      '[bench]',
      `pg1-path=${c.pgdata}`,
      `pg1-socket-path=${c.socketDir}`,
      `pg1-port=${c.port}`,
      'pg1-user=postgres',
      '',
    ].join('\n');
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.config, conf, { mode: 0o644 });
  }

  args(...rest) {
    return [`--config=${this.config}`, '--stanza=bench', ...rest];
  }

  /** The archive_command that pushes into this repository. */
  get archiveCommand() {
    return `pgbackrest --config=${this.config} --stanza=bench archive-push %p`;
  }

  stanzaCreate() {
    runAsPostgres('pgbackrest', this.args('stanza-create'));
  }

  /** A timed full backup; compress is 'none' or 'zst'. Returns the measure and the backup label. */
  backupFull(compress) {
    return this.backup('full', compress);
  }

  /**
   * A timed differential backup against the latest full, uncompressed: pgBackRest's incremental
   * for the same interval as a pgkeep DELTA with a FULL as parent. pgBackRest 2.45 copies whole
   * every file whose size or modification time changed (block-level incrementals came in 2.46).
   * It takes the latest full's compress-type whatever it is asked for, so that full must be an
   * uncompressed one (checked: no stored file may have a codec's extension).
   */
  backupDiff() {
    const diff = this.backup('diff', 'none');
    const compressed = execFileSync('find', [join(this.repoPath, 'backup', 'bench', diff.label, 'pg_data'), '-type', 'f', '(', '-name', '*.zst', '-o', '-name', '*.gz', '-o', '-name', '*.lz4', ')'], { encoding: 'utf8' }).trim();
    if (compressed) throw new Error(`pgbackrest stored diff ${diff.label} compressed (it follows its latest full's compress-type), e.g. ${compressed.split('\n')[0]}`);
    return diff;
  }

  backup(type, compress) {
    const m = measure('pgbackrest', this.args(`--compress-type=${compress}`, `--type=${type}`, 'backup'));
    const backups = this.info().backup;
    const label = backups[backups.length - 1].label;
    return { ...m, label, storedBytes: this.backupBytes(label) };
  }

  /** Timed restore of backup `label` into `target` (created empty, owned by postgres). */
  restore(label, target) {
    runAsPostgres('mkdir', ['-m', '0700', '-p', target]);
    return measure('pgbackrest', this.args(`--pg1-path=${target}`, `--set=${label}`, '--archive-mode=off', 'restore'));
  }

  /** Timed `pgbackrest verify` of the whole repository (every backup and the archive). */
  verify() {
    return measure('pgbackrest', this.args('verify'));
  }

  info() {
    const out = runAsPostgres('pgbackrest', this.args('--output=json', 'info'));
    return JSON.parse(out)[0];
  }

  /** Bytes of the backup's directory in the repository (files stored, with the copied WAL). */
  backupBytes(label) {
    return Number(execFileSync('du', ['-sb', join(this.repoPath, 'backup', 'bench', label)], { encoding: 'utf8' }).split('\t')[0]);
  }
}
