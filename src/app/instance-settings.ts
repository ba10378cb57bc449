/**
 * Per-instance settings (set-config / show-config) and how flags override them.
 * Settings are strings keyed by their flag name, so that show-config prints what set-config takes.
 */
import { COMPRESS_ALGS, type CompressAlg } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import type { ConnectionSettings } from '../postgres/connection.js';
import type { InstanceRow } from '../catalog/catalog.js';
import { defaultLevel, validateLevel } from '../repository/codecs.js';

export const SETTING_KEYS = ['compress-algorithm', 'compress-level'] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

export function parseCompressAlg(text: string): CompressAlg {
  if ((COMPRESS_ALGS as readonly string[]).includes(text)) return text as CompressAlg;
  throw new PgkeepError('INVALID_ARGUMENT', `unknown compression algorithm "${text}"`, `use one of ${COMPRESS_ALGS.join(', ')}`);
}

/** Compression for a backup: flags first, then the instance's settings, then none. */
export function instanceCompression(instance: InstanceRow, alg?: CompressAlg, level?: number): { alg: CompressAlg; level: number } {
  const a = alg ?? (instance.settings['compress-algorithm'] ? parseCompressAlg(instance.settings['compress-algorithm']) : 'none');
  const configured = instance.settings['compress-level'];
  const l = level ?? (configured !== undefined && alg === undefined ? Number(configured) : defaultLevel(a));
  validateLevel(a, l);
  return { alg: a, level: l };
}

/** Connection for a command: flags first, then what add-instance/set-config recorded. */
export function instanceConnection(instance: InstanceRow, flags: ConnectionSettings): ConnectionSettings {
  return {
    host: flags.host ?? instance.connection.host,
    port: flags.port ?? instance.connection.port,
    user: flags.user ?? instance.connection.user,
    dbname: flags.dbname ?? instance.connection.dbname,
  };
}
