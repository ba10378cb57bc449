import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Integration and end-to-end tests start real PostgreSQL servers: give them room, and run
// test files in separate forks so that a crashing server cannot take other files down.
// Node parses the file NODE_EXTRA_CA_CERTS names at every start (about 40 ms on the machines
// that set it, for their package-registry proxy), and the tests start pgkeep, and PostgreSQL's
// archive_command starts it, thousands of times. Nothing under test makes a TLS connection:
// removed here, before the test forks (and the servers and commands they start) inherit it.
delete process.env.NODE_EXTRA_CA_CERTS;
// The backups' trained code caches: in this run's own directory (test/global-setup.ts).
process.env.PGKEEP_CODE_CACHE_DIR = join(tmpdir(), `pgkeep-t${process.pid}-code-cache`);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Three forks on the CI machines' two cores: the end-to-end files spend much of their time
    // waiting on servers (checkpoints, start-up, fsync), so a third file fills the gaps. On a
    // clean clone (.ci/run, AMD EPYC, 2 cores) the suite took 1,100 s with two forks, 968 s with
    // three (docs/testing.md).
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
