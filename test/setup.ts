// Every way into pgkeep awaits initHashing() before it hashes (src/repository/hash.ts); a test
// that calls the hashing modules directly is one too.
import { afterAll } from 'vitest';
import { initHashing } from '../src/repository/hash.js';
import { releaseAll } from './helpers/cleanup.js';

await initHashing();

// Registered before the test file's own hooks, so it runs after them: whatever servers and temp
// dirs a file did not release itself are released here, not in the fork's last second.
afterAll(releaseAll);
