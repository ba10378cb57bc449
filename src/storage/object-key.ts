/**
 * Guards for store keys. The storage layer checks keys itself (rather than trusting the
 * repository layer above) because a key is turned into a file-system path here: a '..' that
 * slipped through would read or write outside the repository.
 */
import { errnoCode, PgkeepError } from '../errors.js';

/** Throw INTERNAL unless `key` is a canonical relative key ('' allowed only when `allowRoot`). */
export function assertValidKey(key: string, allowRoot = false): void {
  if (key === '' && allowRoot) return;
  const bad =
    key === '' ||
    key.includes('\0') ||
    key.startsWith('/') ||
    key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) throw new PgkeepError('INTERNAL', `invalid storage key "${key}"`);
}

/** Temporary names are `<name>.tmp.<pid>.<random hex>`; see PosixStore. */
export const TEMPORARY_NAME = /\.tmp\.(\d+)\.[0-9a-f]+$/;

export function temporaryName(name: string, pid: number, random: string): string {
  return `${name}.tmp.${pid}.${random}`;
}

/** The pid that wrote a temporary, or undefined when `name` is not a temporary. */
export function temporaryOwnerPid(name: string): number | undefined {
  const m = TEMPORARY_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** A live process on this host has `pid` (EPERM: one that belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}
