-- 001_initial: the first catalog schema.
--
-- The catalog is an index of the repository. backup.json, manifest.jsonl and instance.json in
-- the repository are the source of truth, and `pgkeep catalog rebuild` recreates every row below
-- from them. So the schema's job is to answer queries quickly and refuse obviously malformed rows.
-- It does not try to be a second authority on how the repository fits together.
--
-- The migrator runs this file inside a transaction and records it in schema_migrations. Do not
-- put BEGIN/COMMIT here, or a PRAGMA that has no effect inside a transaction. Never edit this
-- file once it is released: the migrator checksums it and refuses a catalog whose applied text
-- differs. Add 002_....sql instead.
--
-- Tables are STRICT: SQLite otherwise stores any value in any column, and a string in data_bytes
-- would only show up later, far from the code that wrote it.
-- Timestamps are ISO-8601 UTC text from Date.toISOString(). It has a fixed width, so it sorts
-- as text.

CREATE TABLE instances (
  name               TEXT    NOT NULL PRIMARY KEY,
  pgdata             TEXT    NOT NULL,
  -- pg_control's system identifier is a uint64, so it is kept as decimal text and never
  -- rounded through a double.
  system_identifier  TEXT    NOT NULL,
  server_version_num INTEGER NOT NULL,
  block_size         INTEGER NOT NULL,
  wal_seg_size       INTEGER NOT NULL,
  -- {host?, port?, user?, dbname?}. No password: libpq's .pgpass and PGPASSWORD handle that.
  connection_json    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(connection_json)),
  -- Per-instance settings (retention, compression defaults...), string values.
  settings_json      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(settings_json)),
  created_at         TEXT    NOT NULL
) STRICT;

-- LSNs are stored twice. start_lsn / stop_lsn hold PostgreSQL's "X/Y" text, which is what users
-- and backup.json read and write. start_lsn_hex / stop_lsn_hex are the same value as 16
-- zero-padded upper-case hex digits, which sort as text in LSN order.
-- We chose padded hex over an INTEGER column. SQLite integers are signed 64-bit and
-- better-sqlite3 refuses to bind a bigint above 2^63-1. An LSN is an unsigned 64-bit value, so an
-- integer column would need an offset or sign trick that every reader has to remember. Padded hex
-- holds the full range exactly, and a person can still read it.
-- The hex columns are GENERATED from the text, so the two forms cannot disagree, and writers do
-- not have to fill them.
--
-- No foreign key from (instance, parent_id) to backups. Such a key:
--   * would make a valid repository unindexable: the repository may hold a child whose parent
--     directory is gone (deleted by hand, or a delete interrupted halfway). That child is an
--     ORPHAN, and the catalog still has to list it so that `show` and `delete` can find it. Even
--     a DEFERRABLE INITIALLY DEFERRED key refuses that state at COMMIT;
--   * would force `catalog rebuild` to insert parents before children, or to do everything in one
--     transaction. Without the key it can upsert backups in directory order;
--   * would not help a chain delete, which goes through descendantsOf() anyway.
-- Whether a chain is whole is decided by chain resolution in core/ (which marks ORPHANs), not
-- by the index. The instance key stays, with ON DELETE CASCADE: a backup row without its
-- instance means nothing, and removing an instance removes its catalog rows in one statement.
CREATE TABLE backups (
  id                 TEXT    NOT NULL,
  instance           TEXT    NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
  mode               TEXT    NOT NULL CHECK (mode IN ('FULL', 'DELTA', 'PTRACK', 'PAGE')),
  status             TEXT    NOT NULL CHECK (status IN ('RUNNING', 'DONE', 'OK', 'ERROR', 'CORRUPT', 'ORPHAN', 'MERGING', 'DELETING')),
  parent_id          TEXT,
  timeline           INTEGER NOT NULL,
  start_lsn          TEXT    NOT NULL CHECK (start_lsn GLOB '[0-9A-F]*/[0-9A-F]*' AND start_lsn NOT GLOB '*[^0-9A-F/]*'),
  stop_lsn           TEXT             CHECK (stop_lsn GLOB '[0-9A-F]*/[0-9A-F]*' AND stop_lsn NOT GLOB '*[^0-9A-F/]*'),
  start_lsn_hex      TEXT    GENERATED ALWAYS AS (
                       substr('00000000' || substr(start_lsn, 1, instr(start_lsn, '/') - 1), -8) ||
                       substr('00000000' || substr(start_lsn, instr(start_lsn, '/') + 1), -8)) STORED,
  stop_lsn_hex       TEXT    GENERATED ALWAYS AS (
                       substr('00000000' || substr(stop_lsn, 1, instr(stop_lsn, '/') - 1), -8) ||
                       substr('00000000' || substr(stop_lsn, instr(stop_lsn, '/') + 1), -8)) STORED,
  start_time         TEXT    NOT NULL,
  end_time           TEXT,
  recovery_time      TEXT,
  recovery_xid       TEXT,
  data_bytes         INTEGER NOT NULL DEFAULT 0,
  stored_bytes       INTEGER NOT NULL DEFAULT 0,
  pgdata_bytes       INTEGER NOT NULL DEFAULT 0,
  wal_bytes          INTEGER NOT NULL DEFAULT 0,
  compress_alg       TEXT    NOT NULL CHECK (compress_alg IN ('none', 'gzip', 'lz4', 'zstd')),
  compress_level     INTEGER NOT NULL,
  stream             INTEGER NOT NULL CHECK (stream IN (0, 1)),
  server_version     TEXT    NOT NULL,
  server_version_num INTEGER NOT NULL,
  program_version    TEXT    NOT NULL,
  note               TEXT,
  system_identifier  TEXT    NOT NULL,
  block_size         INTEGER NOT NULL,
  wal_seg_size       INTEGER NOT NULL,
  checksums_enabled  INTEGER NOT NULL CHECK (checksums_enabled IN (0, 1)),
  owner_pid          INTEGER,
  owner_host         TEXT,
  change_source      TEXT,
  error              TEXT,
  metrics_json       TEXT             CHECK (metrics_json IS NULL OR json_valid(metrics_json)),
  PRIMARY KEY (instance, id)
) STRICT;

-- `show` and retention list an instance's backups newest first.
CREATE INDEX backups_instance_start_time ON backups (instance, start_time);
-- childrenOf / descendantsOf walk the chain downwards. Without a parent FK nothing indexes it
-- for us.
CREATE INDEX backups_instance_parent ON backups (instance, parent_id);
-- Point-in-time restore looks for the newest backup whose stop LSN is before the target.
CREATE INDEX backups_instance_stop_lsn ON backups (instance, stop_lsn_hex);

-- Written by the migrator, one row per applied file. checksum is the SHA-256 of the file text, so
-- a released migration that was edited afterwards is detected rather than silently skipped.
CREATE TABLE schema_migrations (
  version    INTEGER NOT NULL PRIMARY KEY,
  name       TEXT    NOT NULL,
  applied_at TEXT    NOT NULL,
  checksum   TEXT    NOT NULL
) STRICT;
