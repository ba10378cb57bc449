import { Flags } from '@oclif/core';
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { exportBackup, writeExport, type ExportResult } from '../app/export/export-backup.js';
import { fromIoError, PgkeepError } from '../errors.js';
import { BaseCommand, progressFlag, repoFlag, waitFlag } from '../cli/base-command.js';
import type { Meter } from '../app/progress.js';

export default class Export extends BaseCommand {
  static override summary = 'Write the data directory of a backup as a tar archive';
  static override description =
    'The archive holds the directory as a restore would lay it out, rebuilt through the backup\'s chain; ' +
    'unpack it with `tar -x` into an empty directory owned by postgres with mode 0700. Tablespaces are ' +
    'real directories under pg_tblspc/ (see docs/export.md). With no -o, or -o -, the archive goes to ' +
    'standard output and messages to standard error.';
  static override examples = [
    '<%= config.bin %> export -B /backups --instance main -i T4LG2Y -o /tmp/main.tar',
    '<%= config.bin %> export -B /backups --instance main -i T4LG2Y | tar -x -C /srv/pgdata',
  ];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    wait: waitFlag,
    'backup-id': Flags.string({ char: 'i', required: true, description: 'backup to export (FULL or incremental)', helpValue: 'ID' }),
    output: Flags.string({ char: 'o', default: '-', description: 'archive file to write, or - for standard output', helpValue: 'FILE' }),
    threads: Flags.integer({ char: 'j', aliases: ['threads'], default: 1, min: 1, max: 64, description: 'files read and rebuilt ahead of the one being written' }),
    'tmp-dir': Flags.string({
      description: 'directory for scratch files: a file with more than 8 page deltas in its chain is rebuilt there first (default: beside -o FILE, or $TMPDIR)',
      helpValue: 'DIR',
    }),
    progress: progressFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Export);
    const toStdout = flags.output === '-';
    // As GNU tar does: an archive on a terminal is garbage on the screen and lost.
    if (toStdout && process.stdout.isTTY) {
      throw new PgkeepError('INVALID_ARGUMENT', 'refusing to write a tar archive to a terminal', 'give -o FILE, or pipe the output (for example into `tar -x`)');
    }
    const ctx = await this.openRepo(flags['backup-path']);
    const req = { instance: flags.instance, backupId: flags['backup-id'], waitSeconds: flags.wait };
    const meter = this.openMeter(flags.progress);
    const file = toStdout ? undefined : resolve(flags.output);
    const options = { threads: flags.threads, progress: meter, scratchDir: resolve(flags['tmp-dir'] ?? (file ? dirname(file) : tmpdir())) };
    if (!file) {
      const r = await exportBackup(ctx, req, async (plan) => {
        const written = await writeExport(ctx, plan, process.stdout, options);
        await flushed(process.stdout);
        return written;
      });
      this.reportExport(meter, r);
      process.stderr.write(`${summary(r)} to standard output\n`);
      return;
    }
    const r = await exportBackup(ctx, req, (plan) => writeFileAtomically(file, (sink) => writeExport(ctx, plan, sink, options)));
    this.reportExport(meter, r);
    this.log(`${summary(r)} to ${file}`);
  }

  private reportExport(meter: Meter, r: ExportResult): void {
    // To standard error: standard output may be the archive.
    for (const path of r.removedScratch) process.stderr.write(`removed ${path}, a scratch file left by an earlier export on this host that did not finish\n`);
    meter.count({ read: r.bytesRead, written: r.archiveBytes, stored: r.bytesRead });
    this.reportFigures(meter.figures());
  }
}

function summary(r: ExportResult): string {
  return `backup ${r.backup.id} exported (${r.files} files, ${r.directories} directories, ${r.bytes} bytes of data, ${r.archiveBytes} bytes of archive)`;
}

/**
 * Writes through a temporary name beside `file` and renames it into place only once complete
 * and synced, so that a failed export never leaves something that looks like an archive.
 */
async function writeFileAtomically<T>(file: string, write: (sink: Writable) => Promise<T>): Promise<T> {
  const tmp = join(dirname(file), `.${basename(file)}.pgkeep-${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600).catch((e: unknown) => {
    throw fromIoError(e, 'create', tmp);
  });
  // The stream owns the handle and closes it (a handle lent with autoClose off stays referenced
  // by the stream, and closing it then waits forever).
  const sink = fh.createWriteStream();
  // Write errors reach `write` through its own listener; a late one (after a failure elsewhere
  // destroyed the stream) has nobody left to tell and must not end the process.
  sink.on('error', () => undefined);
  const closed = new Promise<void>((res) => sink.once('close', res));
  let renamed = false;
  try {
    const result = await write(sink);
    await new Promise<void>((res, rej) => {
      sink.once('error', rej);
      sink.end(res);
    });
    await closed;
    await syncFile(tmp);
    await rename(tmp, file);
    renamed = true;
    await syncFile(dirname(file));
    return result;
  } catch (e) {
    throw fromIoError(e, 'write', file);
  } finally {
    if (!renamed) {
      sink.destroy();
      await closed;
      await unlink(tmp).catch(() => undefined);
    }
  }
}

/** fsync through a fresh descriptor (the writer's is closed by now); directories included. */
async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Resolves once everything written to a stream has been handed to the OS. */
async function flushed(stream: Writable): Promise<void> {
  if (stream.writableLength === 0) return;
  await new Promise<void>((res, rej) => {
    stream.write('', (err) => (err ? rej(err) : res()));
  });
}
