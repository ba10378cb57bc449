// Every way into pgkeep awaits initHashing() before it hashes (src/repository/hash.ts); a test
// that calls the hashing modules directly is one too.
import { initHashing } from '../src/repository/hash.js';

await initHashing();
