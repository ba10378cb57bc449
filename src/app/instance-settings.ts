/**
 * Per-instance settings (set-config / show-config) and how flags override them.
 * Settings are strings keyed by their flag name, so that show-config prints what set-config takes.
 */
import { COMPRESS_ALGS, type CompressAlg } from '../core/backup-types.js';
import { PgkeepError } from '../errors.js';
import type { ConnectionSettings } from '../postgres/connection.js';
import type { InstanceRow } from '../catalog/catalog.js';
import { defaultLevel, validateLevel } from '../repository/codecs.js';

export const SETTING_KEYS = ['compress-algorithm', 'compress-level', 'retention-redundancy', 'retention-window', 'wal-depth'] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

/** The retention settings (docs/retention.md); 0 or absent means unset. */
export const RETENTION_KEYS = ['retention-redundancy', 'retention-window', 'wal-depth'] as const;

/** A retention setting as set-config writes it: a whole number, 0 or more. */
export function parseRetentionSetting(key: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new PgkeepError('INVALID_ARGUMENT', `${key} must be a whole number, 0 or more (got "${text}")`, `set it with \`pgkeep set-config --${key} N\` (0 turns it off)`);
  }
  return Number(text);
}

/** The instance's retention policy: redundancy (FULL backups), window (days), wal-depth (backups). */
export function instanceRetention(instance: InstanceRow): { redundancy: number; windowDays: number; walDepth: number } {
  const read = (key: (typeof RETENTION_KEYS)[number]) => {
    const v = instance.settings[key];
    return v === undefined ? 0 : parseRetentionSetting(key, v);
  };
  return { redundancy: read('retention-redundancy'), windowDays: read('retention-window'), walDepth: read('wal-depth') };
}

export function parseCompressAlg(text: string): CompressAlg {
  if ((COMPRESS_ALGS as readonly string[]).includes(text)) return text as CompressAlg;
  throw new PgkeepError('INVALID_ARGUMENT', `unknown compression algorithm "${text}"`, `use one of ${COMPRESS_ALGS.join(', ')}`);
}

/** When neither the flags nor the instance name one: the best balance of speed and size measured (docs/benchmarks.md, "Compression"). */
export const DEFAULT_COMPRESS_ALG: CompressAlg = 'zstd';

/** Compression for a backup: flags first, then the instance's settings, then DEFAULT_COMPRESS_ALG. */
export function instanceCompression(instance: InstanceRow, alg?: CompressAlg, level?: number): { alg: CompressAlg; level: number } {
  const a = alg ?? (instance.settings['compress-algorithm'] ? parseCompressAlg(instance.settings['compress-algorithm']) : DEFAULT_COMPRESS_ALG);
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
