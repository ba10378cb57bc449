// The walk of a live data directory against the server's own view of its relation files: every
// relation PostgreSQL says it has is listed once, as a data file, with the size the server gives.
// The walker lists a directory's entries in batches between turns of the event loop; a database
// directory of a few hundred tables spans several batches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walkPgdata } from '../../src/postgres/pgdata-walker.js';
import { TestCluster } from '../helpers/cluster.js';

const TABLES = 600;

describe('walkPgdata on a live PostgreSQL 15 cluster', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await TestCluster.create({ major: 15, name: 'walker' });
    // One statement per table: each gets its own heap file; every tenth one some rows.
    const ddl = Array.from({ length: TABLES }, (_, i) => `CREATE TABLE walk_${i} (v int);${i % 10 === 0 ? ` INSERT INTO walk_${i} SELECT generate_series(1, ${100 * (i + 1)});` : ''}`).join('\n');
    await cluster.query(ddl);
    await cluster.query('CHECKPOINT');
  });
  afterAll(async () => {
    await cluster.destroy();
  });

  it('lists every relation file the server knows, once, sorted, with its size', async () => {
    const rels = await cluster.query<{ path: string; size: string }>(
      `SELECT pg_relation_filepath(c.oid) AS path, pg_relation_size(c.oid) AS size
         FROM pg_class c
        WHERE c.relpersistence = 'p' AND pg_relation_filepath(c.oid) IS NOT NULL`,
    );
    expect(rels.length).toBeGreaterThan(TABLES);
    const [db] = await cluster.query<{ oid: number }>("SELECT oid FROM pg_database WHERE datname = 'postgres'");
    const oid = db!.oid;
    expect(rels.filter((r) => r.path.startsWith(`base/${oid}/`)).length).toBeGreaterThan(2 * 256);

    const walked = await walkPgdata(cluster.pgdata);
    const paths = walked.map((e) => e.path);
    expect(new Set(paths).size).toBe(paths.length);
    expect([...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(paths);

    const byPath = new Map(walked.map((e) => [e.path, e]));
    const missing = rels.filter((r) => !byPath.has(r.path)).map((r) => r.path);
    expect(missing).toEqual([]);
    for (const r of rels) {
      const e = byPath.get(r.path)!;
      expect({ path: r.path, kind: e.kind, size: e.size }).toEqual({ path: r.path, kind: 'data', size: Number(r.size) });
    }
    // The directories themselves come before their contents, and pg_wal's contents are not listed.
    expect(byPath.get(`base/${oid}`)?.kind).toBe('dir');
    expect(paths.some((p) => p.startsWith('pg_wal/'))).toBe(false);
  });
});
