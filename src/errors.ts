/**
 * One error type for everything pgkeep reports to a user.
 *
 * Each error carries a stable `code` (documented in docs/errors.md, safe to match in scripts),
 * the process exit status for that code, and a one-line hint that says what to do next.
 * Lower layers throw `PgkeepError`; the single top-level handler (src/commands/base-command.ts)
 * prints `error: <message>` and `hint: <hint>` and exits with the status. Nothing else exits.
 */

/** Exit statuses, one table, mapped in one place. */
export const ExitStatus = {
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  repository: 4,
  server: 5,
  corrupt: 6,
  busy: 7,
} as const;

export type ExitStatusValue = (typeof ExitStatus)[keyof typeof ExitStatus];

/** Every error code pgkeep raises, with its exit status. Codes never change meaning. */
export const ErrorCodes = {
  INVALID_ARGUMENT: ExitStatus.usage,
  REPO_NOT_FOUND: ExitStatus.repository,
  REPO_NOT_EMPTY: ExitStatus.repository,
  REPO_FORMAT_UNSUPPORTED: ExitStatus.repository,
  REPO_NOT_WRITABLE: ExitStatus.repository,
  CATALOG_NEWER: ExitStatus.repository,
  CATALOG_MIGRATION: ExitStatus.repository,
  CATALOG_CORRUPT: ExitStatus.repository,
  INSTANCE_NOT_FOUND: ExitStatus.notFound,
  INSTANCE_EXISTS: ExitStatus.usage,
  BACKUP_NOT_FOUND: ExitStatus.notFound,
  NO_VALID_BACKUP: ExitStatus.notFound,
  PARENT_INVALID: ExitStatus.notFound,
  NOTHING_TO_RESUME: ExitStatus.notFound,
  PGDATA_NOT_FOUND: ExitStatus.usage,
  PGDATA_MISMATCH: ExitStatus.usage,
  SYSTEM_ID_MISMATCH: ExitStatus.usage,
  SERVER_UNREACHABLE: ExitStatus.server,
  SERVER_AUTH: ExitStatus.server,
  SERVER_ERROR: ExitStatus.server,
  SERVER_UNSUPPORTED: ExitStatus.server,
  ARCHIVE_REQUIRED: ExitStatus.usage,
  ARCHIVE_CONFLICT: ExitStatus.repository,
  WAL_MISSING: ExitStatus.notFound,
  RESTORE_TARGET_NOT_EMPTY: ExitStatus.usage,
  PAGE_CORRUPT: ExitStatus.corrupt,
  BACKUP_CORRUPT: ExitStatus.corrupt,
  MANIFEST_CORRUPT: ExitStatus.corrupt,
  WAL_CORRUPT: ExitStatus.corrupt,
  BACKUP_NOT_RESTORABLE: ExitStatus.corrupt,
  RESTORE_INCOMPLETE: ExitStatus.corrupt,
  LOCKED: ExitStatus.busy,
  DISK_FULL: ExitStatus.error,
  IO_ERROR: ExitStatus.error,
  INTERRUPTED: ExitStatus.error,
  INTERNAL: ExitStatus.error,
} as const satisfies Record<string, ExitStatusValue>;

export type ErrorCode = keyof typeof ErrorCodes;

export class PgkeepError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitStatus: ExitStatusValue;

  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PgkeepError';
    this.code = code;
    this.hint = hint;
    this.exitStatus = ErrorCodes[code];
  }
}

export function isPgkeepError(e: unknown): e is PgkeepError {
  return e instanceof PgkeepError;
}

/** The message of anything thrown: an Error's (a PgkeepError's too), or the value as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Node's errno code of a system error, or undefined. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/**
 * Turn a file-system error into a PgkeepError naming the path; errors that are already ours
 * pass through. Used at the storage edge so that a full disk reads as one, not as a stack trace.
 */
export function fromIoError(e: unknown, action: string, path: string): PgkeepError {
  if (isPgkeepError(e)) return e;
  const code = errnoCode(e);
  const detail = errorMessage(e);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new PgkeepError('DISK_FULL', `no space left while trying to ${action} ${path}`, 'free space on that file system or move the repository, then run the command again', { cause: e });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new PgkeepError('REPO_NOT_WRITABLE', `permission denied while trying to ${action} ${path}`, 'run pgkeep as a user that can write there, or fix the directory permissions', { cause: e });
    case 'EFBIG':
      return new PgkeepError('IO_ERROR', `could not ${action} ${path}: the file would exceed a file-size limit (${detail})`, 'raise the limit (ulimit -f of the user running pgkeep) or use a file system that takes larger files', { cause: e });
    default:
      return new PgkeepError('IO_ERROR', `could not ${action} ${path}: ${detail}`, undefined, { cause: e });
  }
}
