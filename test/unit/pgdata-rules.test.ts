import { describe, expect, it } from 'vitest';
import {
  EXCLUDED_DIRECTORY_CONTENTS,
  PG_CONTROL_PATH,
  classifyPath,
  filterDatabaseDirectory,
  isDatabaseDirectory,
  isExcludedFile,
  isExcludedFileName,
  isTemporaryRelationName,
  tablespaceVersionDirectory,
  walDirectoriesToCreate,
  type EntryType,
  type PathRule,
} from '../../src/postgres/pgdata-rules.js';

describe('EXCLUDED_DIRECTORY_CONTENTS', () => {
  it('lists the directories rebuilt at start, and pg_wal', () => {
    expect([...EXCLUDED_DIRECTORY_CONTENTS].sort()).toEqual(
      ['pg_dynshmem', 'pg_notify', 'pg_replslot', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans', 'pg_wal'].sort(),
    );
    expect(EXCLUDED_DIRECTORY_CONTENTS.has('pg_xact')).toBe(false);
    expect(EXCLUDED_DIRECTORY_CONTENTS.has('pg_stat')).toBe(false); // permanent stats are kept
  });
});

describe('isExcludedFileName', () => {
  // [name, skipped at top level, skipped in a subdirectory]
  const cases: [string, boolean, boolean][] = [
    ['postmaster.pid', true, true],
    ['postmaster.opts', true, true],
    ['postgresql.auto.conf.tmp', true, true],
    ['current_logfiles.tmp', true, true],
    ['pg_internal.init', true, true],
    ['pg_internal.init.12345', true, true],
    ['backup_label', true, true],
    ['tablespace_map', true, true],
    ['backup_manifest', true, true],
    ['pgsql_tmp', true, true],
    ['pgsql_tmp12345.0', true, true],
    ['backup_label.old', true, false],
    ['recovery.signal', true, false],
    ['standby.signal', true, false],
    // Kept:
    ['postgresql.auto.conf', false, false],
    ['postgresql.conf', false, false],
    ['current_logfiles', false, false],
    ['postmaster.pid.bak', false, false],
    ['backup_label.older', false, false],
    ['tablespace_map.old', false, false],
    ['PG_VERSION', false, false],
    ['pg_filenode.map', false, false],
    ['pg_control', false, false],
    ['my_pgsql_tmp', false, false],
    ['ptrack.map', false, false], // only in global/: see isExcludedFile
  ];
  for (const [name, top, nested] of cases) {
    it(`${name}: top level ${top}, nested ${nested}`, () => {
      expect(isExcludedFileName(name, true)).toBe(top);
      expect(isExcludedFileName(name, false)).toBe(nested);
    });
  }
});

describe('isExcludedFile', () => {
  const cases: [string, boolean][] = [
    ['postmaster.pid', true],
    ['standby.signal', true],
    ['base/16384/standby.signal', false],
    ['base/16384/pg_internal.init', true],
    ['global/pg_internal.init', true],
    ['global/ptrack.map', true],
    ['global/ptrack.map.mmap', true],
    ['global/ptrack.map.tmp', true],
    ['ptrack.map', false],
    ['base/5/ptrack.map', false],
    ['global/pg_control', false],
    ['global/1262', false],
    ['base/pgsql_tmp/pgsql_tmp123.4', true],
    ['pg_tblspc/16400/PG_15_202209061/pgsql_tmp/pgsql_tmp9.0', true],
    ['postgresql.auto.conf', false],
  ];
  for (const [path, excluded] of cases) {
    it(`${path}: ${excluded}`, () => {
      expect(isExcludedFile(path)).toBe(excluded);
    });
  }
});

describe('isTemporaryRelationName', () => {
  const cases: [string, boolean][] = [
    ['t3_16384', true],
    ['t3_16384_fsm', true],
    ['t3_16384_vm', true],
    ['t3_16384_init', true],
    ['t3_16384.1', true],
    ['t12_16384_fsm.2', true],
    ['t_16384', false],
    ['t3_', false],
    ['t3', false],
    ['t3_16384_main', false],
    ['t3_16384_fsmx', false],
    ['t3_16384.', false],
    ['t3_16384.1a', false],
    ['16384', false],
    ['T3_16384', false],
    ['xt3_16384', false],
  ];
  for (const [name, temp] of cases) {
    it(`${name}: ${temp}`, () => {
      expect(isTemporaryRelationName(name)).toBe(temp);
    });
  }
});

describe('isDatabaseDirectory', () => {
  const cases: [string, boolean][] = [
    ['base/1', true],
    ['base/16384', true],
    ['pg_tblspc/16400/PG_15_202209061/16384', true],
    ['pg_tblspc/16400/PG_9.6_201608131/16384', true],
    ['base', false],
    ['base/pgsql_tmp', false],
    ['base/16384/sub', false],
    ['global', false],
    ['pg_tblspc/16400', false],
    ['pg_tblspc/16400/PG_15_202209061', false],
    ['pg_tblspc/16400/PG_15_202209061/pgsql_tmp', false],
    ['pg_tblspc/16400/other/16384', false],
    ['pg_tblspc/x/PG_15_202209061/16384', false],
    ['other/16384', false],
  ];
  for (const [path, isDb] of cases) {
    it(`${path}: ${isDb}`, () => {
      expect(isDatabaseDirectory(path)).toBe(isDb);
    });
  }
});

describe('filterDatabaseDirectory', () => {
  it('keeps logged relations and the other files of a database directory, in order', () => {
    const names = ['1259', '1259_fsm', '1259_vm', '2662', '16384.1', 'PG_VERSION', 'pg_filenode.map'];
    expect(filterDatabaseDirectory(names)).toEqual(names);
  });

  it('keeps only the init fork of an unlogged relation', () => {
    const names = ['16500', '16500.1', '16500_fsm', '16500_vm', '16500_init', '16501', '1650', '165000', '16500_init.1'];
    expect(filterDatabaseDirectory(names)).toEqual(['16500_init', '16501', '1650', '165000', '16500_init.1']);
  });

  it('keeps an unlogged index init fork and drops its main fork', () => {
    expect(filterDatabaseDirectory(['16510_init', '16510'])).toEqual(['16510_init']);
  });

  it('drops temporary relations, temporary files and the relcache init file', () => {
    const names = ['t3_16600', 't3_16600_fsm', 't3_16600.1', 'pgsql_tmp', 'pg_internal.init', 'pg_internal.init.999', '2619'];
    expect(filterDatabaseDirectory(names)).toEqual(['2619']);
  });

  it('does not let a temporary relation\'s init fork mark a logged relation unlogged', () => {
    expect(filterDatabaseDirectory(['t3_16700_init', '16700'])).toEqual(['16700']);
  });

  it('keeps unknown names: they are copied as plain files', () => {
    expect(filterDatabaseDirectory(['README', '016500', '16500_init.0'])).toEqual(['README', '016500', '16500_init.0']);
  });
});

describe('classifyPath', () => {
  const cases: [string, EntryType, PathRule][] = [
    ['PG_VERSION', 'file', 'copy'],
    ['postgresql.conf', 'file', 'copy'],
    ['global/1262', 'file', 'copy'],
    [PG_CONTROL_PATH, 'file', 'copy'],
    ['base', 'directory', 'copy'],
    ['base/16384', 'directory', 'copy'],
    ['base/16384/2674', 'file', 'copy'],
    ['pg_xact', 'directory', 'copy'],
    ['pg_xact/0000', 'file', 'copy'],
    ['pg_stat', 'directory', 'copy'],
    ['pg_wal', 'directory', 'empty-directory'],
    ['pg_wal', 'symlink', 'empty-directory'],
    ['pg_wal/000000010000000000000001', 'file', 'skip'],
    ['pg_wal/archive_status', 'directory', 'skip'],
    ['pg_stat_tmp', 'directory', 'empty-directory'],
    ['pg_stat_tmp/global.stat', 'file', 'skip'],
    ['pg_replslot/slot1/state', 'file', 'skip'],
    ['pg_subtrans', 'directory', 'empty-directory'],
    ['pg_dynshmem', 'symlink', 'empty-directory'],
    ['base/16384/pg_wal', 'directory', 'copy'], // only the top-level one is special
    ['postmaster.pid', 'file', 'skip'],
    ['standby.signal', 'file', 'skip'],
    ['base/pgsql_tmp', 'directory', 'skip'],
    ['base/pgsql_tmp/pgsql_tmp1.0', 'file', 'skip'],
    ['base/16384/pg_internal.init', 'file', 'skip'],
    ['global/ptrack.map', 'file', 'skip'],
    ['base/16384/t3_16600', 'file', 'skip'],
    ['pg_tblspc/16400/PG_15_202209061/16384/t3_16600_fsm', 'file', 'skip'],
    ['pg_tblspc/16400/PG_15_202209061/16384/16401', 'file', 'copy'],
    ['pg_logical/t3_16600', 'file', 'copy'], // not a database directory
    ['pg_tblspc', 'directory', 'copy'],
    ['pg_tblspc/16400', 'symlink', 'tablespace-link'],
    ['pg_tblspc/16400', 'directory', 'copy'], // an in-place tablespace (allow_in_place_tablespaces)
    ['postgresql.conf', 'symlink', 'unsupported-link'],
    ['base/16384/2674', 'symlink', 'unsupported-link'],
    ['pg_tblspc/16400/PG_15_202209061', 'symlink', 'unsupported-link'],
  ];
  for (const [path, type, rule] of cases) {
    it(`${path} (${type}): ${rule}`, () => {
      expect(classifyPath(path, type)).toBe(rule);
    });
  }
});

describe('tablespaceVersionDirectory and walDirectoriesToCreate', () => {
  it('names the version directory as PostgreSQL does', () => {
    expect(tablespaceVersionDirectory(15, 202209061)).toBe('PG_15_202209061');
    expect(isDatabaseDirectory(`pg_tblspc/1/${tablespaceVersionDirectory(17, 202406281)}/5`)).toBe(true);
  });

  it('adds pg_wal/summaries from 17 on', () => {
    expect(walDirectoriesToCreate(16)).toEqual(['pg_wal', 'pg_wal/archive_status']);
    expect(walDirectoriesToCreate(17)).toEqual(['pg_wal', 'pg_wal/archive_status', 'pg_wal/summaries']);
  });
});
