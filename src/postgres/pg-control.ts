/**
 * The first fields of global/pg_control (ControlFileData in src/include/catalog/pg_control.h).
 *
 * PostgreSQL keeps system_identifier, pg_control_version and catalog_version_no at fixed offsets
 * in every version precisely so that tools can read them before knowing the rest of the layout:
 * system_identifier uint64 at 0, pg_control_version uint32 at 8, catalog_version_no uint32 at 12,
 * in the byte order of the server (little-endian on every platform pgkeep supports).
 */
import { PgkeepError } from '../errors.js';

export interface ControlFileBasics {
  /** Unique per cluster (initdb); WAL and backups of other clusters must be refused. */
  systemIdentifier: bigint;
  /** PG_CONTROL_VERSION: the layout of pg_control itself. */
  pgControlVersion: number;
  /** CATALOG_VERSION_NO: the catalog layout, also the suffix of tablespace version directories. */
  catalogVersionNo: number;
}

const BASICS_SIZE = 16;

export function readControlFileBasics(buf: Uint8Array): ControlFileBasics {
  if (buf.length < BASICS_SIZE) {
    throw new PgkeepError(
      'PGDATA_MISMATCH',
      `pg_control is ${buf.length} bytes long, too short to hold a system identifier`,
      'check that the path is a PostgreSQL data directory and that global/pg_control is intact',
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    systemIdentifier: view.getBigUint64(0, true),
    pgControlVersion: view.getUint32(8, true),
    catalogVersionNo: view.getUint32(12, true),
  };
}

/**
 * Major versions whose pg_control has this PG_CONTROL_VERSION; empty when unknown. Several
 * majors share one value (1300 is 13 to 16), so this narrows the version, it does not name it.
 */
export function pgControlVersionToMajors(pgControlVersion: number): readonly number[] {
  return PG_CONTROL_VERSIONS[pgControlVersion] ?? [];
}

const PG_CONTROL_VERSIONS: Readonly<Record<number, readonly number[]>> = {
  1300: [13, 14, 15, 16],
  1700: [17],
  1800: [18],
};
