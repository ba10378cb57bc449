-- TEST FIXTURE for pgkeep: the documented ptrack 2.x SQL API, computed from the WAL summaries of a
-- PostgreSQL 17 server (summarize_wal = on). No ptrack build exists for the test machine; this
-- gives pgkeep's ptrack client a real server that answers as ptrack does:
--
--   ptrack_version()            -> text
--   ptrack_init_lsn()           -> pg_lsn: since when every change is tracked (0/0: not tracking)
--   ptrack_get_pagemapset(lsn)  -> (path, pagecount, pagemap): one row per relation segment with
--                                  a block changed since lsn; path relative to PGDATA; block b of
--                                  the segment is bit b % 8 of byte b / 8, least significant first.
--
-- It keeps to the contract's allowances on purpose, so that a client that relies on more fails
-- here as it would with the real extension:
--   * bitmaps stop at the highest changed block: shorter than the file, unless
--   * the file's last block changed: then the bitmap runs 16 blocks past the file's end with those
--     extra bits set (bits the client must ignore);
--   * a database created by file copy (no per-block WAL) reports every block of its files.
-- ptrack itself tracks synchronously; summaries lag, so ptrack_get_pagemapset first waits until
-- the summarizer has reached the last checkpoint's redo pointer, which is a backup's start LSN.

\echo Use "CREATE EXTENSION ptrack" to load this file. \quit

CREATE FUNCTION @extschema@.ptrack_version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '2.4' $$;

-- The start of the oldest summary of the current timeline: changes before it are unknown.
CREATE FUNCTION @extschema@.ptrack_init_lsn() RETURNS pg_lsn
LANGUAGE sql STABLE AS $$
  SELECT coalesce(min(s.start_lsn), '0/0'::pg_lsn)
    FROM pg_catalog.pg_available_wal_summaries() s
   WHERE s.tli = (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint())
$$;

-- The file path of a relation fork segment, as GetRelationPath() spells it, relative to PGDATA.
CREATE FUNCTION @extschema@.ptrack_fixture_path(spc oid, db oid, rel oid, fork int, seg bigint) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE spc
           WHEN 1664 THEN 'global/'
           WHEN 1663 THEN 'base/' || db || '/'
           ELSE 'pg_tblspc/' || spc || '/PG_' || (current_setting('server_version_num')::int / 10000)
                || '_' || (SELECT catalog_version_no FROM pg_catalog.pg_control_system()) || '/' || db || '/'
         END
         || rel
         || (ARRAY['', '_fsm', '_vm', '_init'])[fork + 1]
         || CASE WHEN seg = 0 THEN '' ELSE '.' || seg END
$$;

-- ptrack answers at once; summaries lag behind WAL. Wait (10 minutes at most) until the
-- summarizer has reached the last checkpoint's redo pointer.
CREATE FUNCTION @extschema@.ptrack_fixture_wait() RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_redo pg_lsn := (SELECT redo_lsn FROM pg_catalog.pg_control_checkpoint());
  v_deadline timestamptz := clock_timestamp() + interval '10 minutes';
BEGIN
  WHILE (SELECT summarized_lsn FROM pg_catalog.pg_get_wal_summarizer_state()) < v_redo LOOP
    IF clock_timestamp() > v_deadline THEN
      RAISE EXCEPTION 'ptrack fixture: the WAL summarizer has not reached %', v_redo;
    END IF;
    PERFORM pg_catalog.pg_sleep(0.1);
  END LOOP;
END
$$;

-- Reads only: a fixture that wrote (even a temporary table) would change the cluster it reports on.
CREATE FUNCTION @extschema@.ptrack_get_pagemapset(start_lsn pg_lsn)
RETURNS TABLE (path text, pagecount bigint, pagemap bytea)
LANGUAGE sql VOLATILE AS $$
SELECT @extschema@.ptrack_fixture_wait();
WITH contents AS MATERIALIZED (
  SELECT c.reltablespace, c.reldatabase, c.relfilenode, c.relforknumber, c.relblocknumber, c.is_limit_block
    FROM pg_catalog.pg_available_wal_summaries() s,
         LATERAL pg_catalog.pg_wal_summary_contents(s.tli, s.start_lsn, s.end_lsn) c
   WHERE s.tli = (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint())
     AND s.end_lsn > $1
), copied_dirs AS (
  -- CREATE DATABASE ... STRATEGY FILE_COPY copies files without per-block WAL; the summaries
  -- record it as relation 0 of the database with a limit block. ptrack marks every copied block.
  SELECT DISTINCT reltablespace AS spc, reldatabase AS db,
         left(@extschema@.ptrack_fixture_path(reltablespace, reldatabase, 1, 0, 0), -1) AS dir
    FROM contents WHERE is_limit_block AND relfilenode = 0
), blocks AS (
  SELECT DISTINCT reltablespace AS spc, reldatabase AS db, relfilenode AS rel, relforknumber::int AS fork,
         relblocknumber / 131072 AS seg, relblocknumber % 131072 AS blk
    FROM contents WHERE NOT is_limit_block
  UNION
  SELECT d.spc, d.db, f.rel, f.fork, f.seg, b.blk
    FROM copied_dirs d,
         LATERAL pg_catalog.pg_ls_dir(d.dir, true, false) AS n(name),
         LATERAL (SELECT m[1]::oid AS rel,
                         CASE m[2] WHEN '_fsm' THEN 1 WHEN '_vm' THEN 2 WHEN '_init' THEN 3 ELSE 0 END AS fork,
                         coalesce(m[3]::bigint, 0) AS seg
                    FROM regexp_match(n.name, '^([1-9][0-9]*)(_fsm|_vm|_init)?(?:\.([1-9][0-9]*))?$') AS m
                   WHERE m IS NOT NULL) f,
         LATERAL generate_series(0, (pg_catalog.pg_stat_file(d.dir || n.name, true)).size / 8192 - 1) AS b(blk)
), segs AS (
  SELECT spc, db, rel, fork, seg, max(blk) AS top, count(*) AS n,
         @extschema@.ptrack_fixture_path(spc, db, rel, fork, seg) AS path
    FROM blocks GROUP BY spc, db, rel, fork, seg
), sized AS (
  -- A segment whose last block changed gets 16 more set bits past the end of the file (bits a
  -- client must ignore); the others stop at their highest changed block (shorter than the file).
  SELECT z.*, CASE WHEN x.blocks = z.top + 1 THEN x.blocks END AS extra_from,
         CASE WHEN x.blocks = z.top + 1 THEN (x.blocks + 15) / 8 ELSE z.top / 8 END + 1 AS nbytes
    FROM segs z,
         LATERAL (SELECT (pg_catalog.pg_stat_file(z.path, true)).size / 8192 AS blocks) x
), bits AS (
  SELECT spc, db, rel, fork, seg, blk FROM blocks
  UNION ALL
  SELECT spc, db, rel, fork, seg, e FROM sized, generate_series(extra_from, extra_from + 15) e WHERE extra_from IS NOT NULL
), bytes AS (
  SELECT spc, db, rel, fork, seg, blk / 8 AS i, bit_or(1 << (blk % 8)::int) AS v
    FROM bits GROUP BY spc, db, rel, fork, seg, blk / 8
)
SELECT z.path, z.n,
       pg_catalog.decode(string_agg(lpad(to_hex(coalesce(b.v, 0)), 2, '0'), '' ORDER BY g.i), 'hex')
  FROM sized z
 CROSS JOIN LATERAL generate_series(0, z.nbytes - 1) AS g(i)
  LEFT JOIN bytes b ON (b.spc, b.db, b.rel, b.fork, b.seg, b.i) = (z.spc, z.db, z.rel, z.fork, z.seg, g.i)
 GROUP BY z.spc, z.db, z.rel, z.fork, z.seg, z.path, z.n;
$$;
