// pgkeep as the benchmark runs it: the built CLI (bin/run.js -> dist/), as the postgres OS user
// when we are root, on a repository beside the throwaway cluster. PGKEEP_BENCH_BIN=path/bin/run.js
// benchmarks another build (another checkout's) instead.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measure } from './measure.js';
import { runAsPostgres } from './throwaway-cluster.js';

export const pgkeepBin = process.env.PGKEEP_BENCH_BIN || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js');

export class PgkeepRepo {
  /** @param c a started ThrowawayCluster; the repository is c.work/<name>. */
  constructor(c, { name = 'repo', threads = '2' } = {}) {
    this.c = c;
    this.root = join(c.work, name);
    this.threads = String(threads);
    this.env = { PGKEEP_REPO: this.root };
  }

  /** Untimed run; returns stdout. */
  run(args) {
    return runAsPostgres(process.execPath, [pgkeepBin, ...args], { env: { ...process.env, ...this.env } });
  }

  /** Timed run under GNU time. */
  timed(args, env = {}) {
    return measure(process.execPath, [pgkeepBin, ...args], { env: { ...this.env, ...env } });
  }

  setUp() {
    this.run(['init']);
    this.run(['add-instance', '--instance', 'b', '-D', this.c.pgdata, ...this.c.connectionArgs]);
  }

  /** The archive_command that pushes into this repository. */
  get archiveCommand() {
    return `"${process.execPath}" "${pgkeepBin}" archive-push -B "${this.root}" --instance b --wal-file-path "%p" --wal-file-name "%f"`;
  }

  /**
   * A timed --stream backup without validation (validate is timed on its own). `timeline`: run it
   * with PGKEEP_DEBUG and return its time line (`phases`: each step's name and the ms since the
   * process started at its end; docs/errors.md, "PGKEEP_DEBUG").
   */
  backup(mode, { compress = 'none', parent, timeline = false } = {}) {
    const m = this.timed(['backup', '--instance', 'b', '-b', mode, '--stream', '-j', this.threads, '--no-validate', '--compress-algorithm', compress, ...(parent ? ['--parent', parent] : [])], timeline ? { PGKEEP_DEBUG: '1' } : {});
    const id = /^backup ([0-9A-Z]+) /m.exec(m.stdout)?.[1];
    if (!id) throw new Error(`no backup id in pgkeep's output:\n${m.stdout}`);
    const b = this.show(id);
    const phases = timeline ? [...m.stderr.matchAll(/^DEBUG: (\d+\.\d) ms (.+)$/gm)].map((x) => ({ phase: x[2], ms: Number(x[1]) })) : undefined;
    return { ...m, id, storedBytes: Number(b.stored_bytes), pagesRead: b.metrics?.pagesRead, phases };
  }

  restore(id, target) {
    return this.timed(['restore', '--instance', 'b', '-i', id, '-D', target, '-j', this.threads, '--archive-mode', 'off']);
  }

  validate(id) {
    return this.timed(['validate', '--instance', 'b', ...(id ? ['-i', id] : []), '-j', this.threads]);
  }

  merge(id) {
    return this.timed(['merge', '--instance', 'b', '-i', id, '-j', this.threads]);
  }

  backups() {
    return JSON.parse(this.run(['show', '--instance', 'b', '--format', 'json']))[0]?.backups ?? [];
  }

  show(id) {
    const b = this.backups().find((x) => x.id === id);
    if (!b) throw new Error(`backup ${id} is not in pgkeep show`);
    return b;
  }
}
