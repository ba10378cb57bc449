// The code caches that backups train and save (src/cli/trained-code-cache.ts) go to one
// directory of this test run (vitest.config.ts names it), not the home of whoever runs the
// tests. The backups run as root share it, so most of the suite's backups start from a trained
// cache, as an operator's do. Removed at the end; a killed run's is swept by the next
// (helpers/cleanup.ts: it is named as the helpers' temp dirs are).
import { rmSync } from 'node:fs';

export function setup(): () => void {
  return () => {
    const dir = process.env.PGKEEP_CODE_CACHE_DIR;
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}
