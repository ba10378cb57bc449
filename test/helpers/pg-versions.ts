// Which PostgreSQL majors are installed on this machine, and where their programs live.
//
// Server binaries come either from Debian (/usr/lib/postgresql/NN/bin, today only 15) or from the
// npm builds installed as aliased devDependencies (node_modules/pgNN/native/bin, see
// docs/testing.md). The npm builds carry a RUNPATH of $ORIGIN/../lib, so they need no
// LD_LIBRARY_PATH. They have no client programs: pgbench/psql come from Debian whatever the
// server major (pgbench 15 drives a 17 server fine).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type PgMajor = 13 | 14 | 15 | 16 | 17 | 18;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODE_MODULES = join(REPO_ROOT, 'node_modules');
const debian = (major: PgMajor): string => `/usr/lib/postgresql/${major}/bin`;
const npm = (major: PgMajor): string => join(NODE_MODULES, `pg${major}`, 'native', 'bin');

/**
 * The one table to edit when a major is added: candidate server bin directories, first match
 * wins. Debian comes first so that a distribution package (with its matching client programs)
 * is preferred over the npm build when both exist.
 */
const SERVER_BIN_CANDIDATES: Readonly<Record<PgMajor, readonly string[]>> = {
  13: [debian(13), npm(13)],
  14: [debian(14), npm(14)],
  15: [debian(15), npm(15)],
  16: [debian(16), npm(16)],
  17: [debian(17), npm(17)],
  18: [debian(18), npm(18)],
};

const ALL_MAJORS: readonly PgMajor[] = [13, 14, 15, 16, 17, 18];
const SERVER_PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const;

function findServerBinDir(major: PgMajor): string | undefined {
  return SERVER_BIN_CANDIDATES[major].find((dir) =>
    SERVER_PROGRAMS.every((program) => existsSync(join(dir, program))),
  );
}

/** Majors whose server binaries (initdb, pg_ctl, postgres) are installed, ascending. */
export function availableMajors(): PgMajor[] {
  return ALL_MAJORS.filter((major) => findServerBinDir(major) !== undefined);
}

/**
 * Installed majors, narrowed by PGKEEP_TEST_MAJORS (e.g. "15,17") so CI can split a version
 * matrix across jobs. A requested major that is not installed is an error, not a silent skip,
 * so a misconfigured job cannot pass by testing nothing.
 */
export function majorsUnderTest(): PgMajor[] {
  const installed = availableMajors();
  const requested = process.env['PGKEEP_TEST_MAJORS'];
  if (requested === undefined || requested.trim() === '') return installed;
  const majors = requested.split(',').map((part) => Number(part.trim()));
  for (const major of majors) {
    if (!installed.includes(major as PgMajor)) {
      throw new Error(
        `PGKEEP_TEST_MAJORS asks for PostgreSQL ${major}, installed: ${installed.join(', ')}`,
      );
    }
  }
  return majors as PgMajor[];
}

/** Directory holding initdb, pg_ctl and postgres of this major; throws when not installed. */
export function binDir(major: PgMajor): string {
  const dir = findServerBinDir(major);
  if (dir === undefined) {
    throw new Error(
      `PostgreSQL ${major} is not installed (looked in ${SERVER_BIN_CANDIDATES[major].join(', ')})`,
    );
  }
  return dir;
}

/**
 * Path of a client program (pgbench, psql, pg_checksums, ...). The server's own bin directory
 * is preferred; otherwise the newest Debian install that has it, since the npm builds ship none.
 */
export function clientProgram(name: string, major?: PgMajor): string {
  const preferred = major === undefined ? undefined : findServerBinDir(major);
  const dirs = [
    ...(preferred === undefined ? [] : [preferred]),
    ...[...ALL_MAJORS].reverse().map(debian),
  ];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`no ${name} found (looked in ${dirs.join(', ')}); apt-get install postgresql-15`);
}

/** True when `program` in the server's bin directory is of the same major (not a stand-in). */
export function hasOwnProgram(major: PgMajor, name: string): boolean {
  return existsSync(join(binDir(major), name));
}
