import { defineConfig } from 'vitest/config';

// Integration and end-to-end tests start real PostgreSQL servers: give them room, and run
// test files in separate forks so that a crashing server cannot take other files down.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
