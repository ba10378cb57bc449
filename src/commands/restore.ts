import { Flags } from '@oclif/core';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_PREFETCH } from '../app/archive/wal-prefetch.js';
import { restoreBackup } from '../app/restore/restore-backup.js';
import { parseTablespaceMappings } from '../core/tablespace-mapping.js';
import { debugPhase } from '../debug.js';
import { PgkeepError } from '../errors.js';
import { BaseCommand, progressFlag, repoFlag, threadsFlag, waitFlag } from '../cli/base-command.js';
import { recoveryRequestFromFlags, recoveryTargetFlags } from '../cli/recovery-target-flags.js';

export default class Restore extends BaseCommand {
  static override summary = 'Restore a backup into an empty directory';
  static override examples = [
    '<%= config.bin %> restore -B /backups --instance main -D /restore',
    '<%= config.bin %> restore -B /backups --instance main -D /restore -i T4LG2Y -T /old/tblspc=/new/tblspc',
    '<%= config.bin %> restore -B /backups --instance main -D /restore -X /wal/main',
    '<%= config.bin %> restore -B /backups --instance main -D /restore --recovery-target-time "2026-11-24 12:00:00+00" --archive-get-prefetch 16',
    "<%= config.bin %> restore -B /backups --instance main -D /standby --as-standby --primary-conninfo 'host=primary user=replicator'",
  ];
  static override flags = {
    'backup-path': repoFlag,
    instance: Flags.string({ required: true, description: 'instance name', helpValue: 'NAME' }),
    wait: waitFlag,
    pgdata: Flags.string({ char: 'D', required: true, description: 'empty or new directory to restore into', helpValue: 'DIR' }),
    'backup-id': Flags.string({ char: 'i', description: 'backup to restore (default: the newest OK one)', helpValue: 'ID' }),
    threads: threadsFlag,
    progress: progressFlag,
    'tablespace-mapping': Flags.string({ char: 'T', multiple: true, description: 'restore the tablespace at OLDDIR into NEWDIR', helpValue: 'OLDDIR=NEWDIR' }),
    waldir: Flags.string({ char: 'X', description: 'put the WAL in DIR (empty or new, outside -D), with pg_wal a link to it, as initdb -X does', helpValue: 'DIR' }),
    ...recoveryTargetFlags,
    'recovery-target-action': Flags.string({ options: ['promote', 'pause', 'shutdown'], default: 'promote', description: 'what the server does at the target' }),
    'archive-mode': Flags.string({ options: ['preserve', 'off'], default: 'preserve', description: 'off: the restored cluster does not archive (a copy must not push into the original\'s archive)' }),
    'archive-get-prefetch': Flags.integer({ min: 0, max: MAX_PREFETCH, default: 0, description: "restore_command's archive-get --prefetch: segments fetched ahead in the background while recovery replays (0: off)", helpValue: 'N' }),
    'as-standby': Flags.boolean({ default: false, description: 'restore as a standby (standby.signal): it replays the archive and, with --primary-conninfo, streams from its primary' }),
    'primary-conninfo': Flags.string({ dependsOn: ['as-standby'], description: "the standby's primary_conninfo, e.g. 'host=primary port=5432 user=replicator'", helpValue: 'CONNINFO' }),
    'primary-slot-name': Flags.string({ dependsOn: ['primary-conninfo'], description: "the standby's primary_slot_name: a physical slot on the primary that keeps the WAL it still needs", helpValue: 'NAME' }),
    owner: Flags.string({ description: 'owner of the restored files when run as root (default: as in the source)', helpValue: 'USER[:GROUP]' }),
    force: Flags.boolean({ default: false, description: 'salvage: restore a CORRUPT/ORPHAN backup or a broken chain, leaving out (and listing) every file that cannot be rebuilt; exits non-zero when anything is missing' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Restore);
    const ctx = await this.openRepo(flags['backup-path']);
    debugPhase('program loaded, repository and catalog open');
    const meter = this.openMeter(flags.progress);
    const r = await restoreBackup(ctx, {
      progress: meter,
      instance: flags.instance,
      backupId: flags['backup-id'],
      dest: resolve(flags.pgdata),
      threads: flags.threads,
      tablespaceMapping: parseTablespaceMappings(flags['tablespace-mapping'] ?? []),
      walDir: flags.waldir === undefined ? undefined : resolve(flags.waldir),
      recovery: {
        ...recoveryRequestFromFlags(flags),
        action: flags['recovery-target-action'] as 'promote' | 'pause' | 'shutdown',
        restoreCommand: archiveGetCommand(resolve(flags['backup-path']), flags.instance, flags['archive-get-prefetch']),
        standby: flags['as-standby'] ? { primaryConninfo: flags['primary-conninfo'], primarySlotName: flags['primary-slot-name'] } : undefined,
      },
      owner: flags.owner ? lookupOwner(flags.owner) : undefined,
      archiveMode: flags['archive-mode'] as 'off' | 'preserve',
      waitSeconds: flags.wait,
      force: flags.force,
    });
    meter.count({ read: r.bytesRead, written: r.bytesWritten, stored: r.bytesRead });
    this.reportFigures(meter.figures());
    if (r.missing.length > 0) {
      for (const m of r.missing) this.reporter.warn(`not restored: ${m.path}: ${m.problem}`);
      throw new PgkeepError('RESTORE_INCOMPLETE', `restore of backup ${r.backup.id} into ${resolve(flags.pgdata)} is incomplete: ${r.missing.length} item(s) could not be restored (listed above), ${r.filesWritten} files were`, 'the data directory is incomplete: do not start it as-is before you understand what is lost; restore an intact backup if there is one');
    }
    this.log(`backup ${r.backup.id} restored into ${resolve(flags.pgdata)}${flags['as-standby'] ? ' as a standby' : ''} (${r.filesWritten} files, ${r.bytesWritten} bytes)`);
  }
}

/** restore_command for the restored server: this very pgkeep, by absolute paths. */
function archiveGetCommand(repo: string, instance: string, prefetch: number): string {
  const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
  const command = `"${process.execPath}" "${bin}" archive-get -B "${repo}" --instance "${instance}" --wal-file-path "%p" --wal-file-name "%f"`;
  return prefetch > 0 ? `${command} --prefetch ${prefetch}` : command;
}

function lookupOwner(spec: string): { uid: number; gid: number } {
  const [user, group] = spec.split(':');
  try {
    const uid = Number(execFileSync('id', ['-u', user!], { encoding: 'utf8' }).trim());
    const gid = group ? Number(execFileSync('getent', ['group', group], { encoding: 'utf8' }).split(':')[2]) : Number(execFileSync('id', ['-g', user!], { encoding: 'utf8' }).trim());
    if (Number.isNaN(uid) || Number.isNaN(gid)) throw new Error('not a number');
    return { uid, gid };
  } catch {
    throw new PgkeepError('INVALID_ARGUMENT', `unknown owner "${spec}"`, 'give an existing user, optionally with :group');
  }
}
