// What the benchmark ran on: CPU, cores, RAM, the disk under the temp directory, kernel, Node and
// the versions of PostgreSQL and the peers.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';

// Taken when the run starts: a busy machine makes every figure slower, so the report says so.
const loadAtStart = loadavg();
import { join } from 'node:path';
import { extraCaCertsNote } from './node-env.js';

function out(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function disk() {
  const src = out('findmnt', ['-no', 'SOURCE,FSTYPE', '-T', tmpdir()]);
  if (!src) return 'unknown disk';
  const [device, fstype] = src.split(/\s+/);
  const blk = out('lsblk', ['-ndo', 'SIZE,ROTA,MODEL', device]);
  const [size, rota, ...model] = (blk ?? '').split(/\s+/);
  const kind = rota === '1' ? 'rotational per lsblk' : rota === '0' ? 'non-rotational per lsblk' : '';
  return [`${device} (${fstype}`, size ? `, ${size}` : '', kind ? `, ${kind}` : '', model.join(' ') ? `, ${model.join(' ')}` : '', ')'].join('');
}

/** One line per fact, for the report's header; pgbackrest: its version (or why it is missing), when it took part. */
export function machineDescription({ binDirs = {}, pgbackrest, peers = true } = {}) {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown CPU';
  const pg = Object.entries(binDirs)
    .map(([major, dir]) => `${out(join(dir, 'postgres'), ['--version']) ?? `PostgreSQL ${major}`} (${dir})`)
    .join('; ');
  return [
    `CPU: ${cpu}, ${cpus().length} cores`,
    `RAM: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Disk: ${disk()}`,
    `Kernel: Linux ${release()}`,
    `Load average when the run started: ${loadAtStart.map((l) => l.toFixed(2)).join(', ')} (1, 5, 15 min; about 0 on a quiet machine); when it ended: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`,
    `Node: ${process.version}`,
    extraCaCertsNote(),
    pg ? `PostgreSQL: ${pg}` : undefined,
    peers ? `pg_basebackup: ${out('/usr/lib/postgresql/15/bin/pg_basebackup', ['--version']) ?? 'not installed'}` : undefined,
    pgbackrest ? `pgBackRest: ${pgbackrest}` : undefined,
  ].filter(Boolean);
}
