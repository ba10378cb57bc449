/**
 * Phase 5 of a restore (restore-backup.ts): what makes the restored directory recover the way it
 * was asked to. Recovery settings (a target, a standby, the restore_command) go at the end of
 * postgresql.auto.conf, where they win over the copied configuration, with the signal file that
 * makes the server read them; --archive-mode=off turns archiving off there too. Returns the
 * paths written, which the restore syncs with the rest before pg_control.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recoveryConfigLines, recoverySignalFile, type RecoveryRequest } from '../../core/recovery-settings.js';
import type { SetOwner } from './restore-layout.js';

export async function writeRecoveryFiles(
  dest: string,
  recovery: RecoveryRequest,
  o: { fromArchive: boolean; archiveMode: 'off' | 'preserve' | undefined; setOwner: SetOwner },
): Promise<string[]> {
  const recoveryLines = recoveryConfigLines(recovery, o.fromArchive);
  const lines = o.archiveMode === 'off' ? [...(recoveryLines ?? []), '# archiving turned off by pgkeep restore --archive-mode=off', "archive_mode = 'off'"] : recoveryLines;
  if (!lines) return [];
  const auto = join(dest, 'postgresql.auto.conf');
  await appendFile(auto, `\n${lines.join('\n')}\n`, { mode: 0o600 });
  await o.setOwner(auto, undefined);
  if (!recoveryLines) return [auto];
  const signal = join(dest, recoverySignalFile(recovery));
  await writeFile(signal, '', { mode: 0o600 });
  await o.setOwner(signal, undefined);
  return [auto, signal];
}
