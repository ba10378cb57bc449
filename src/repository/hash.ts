/**
 * xxh64 checksums of content and stored bytes (the manifest's `checksum` / `storedChecksum`).
 *
 * xxhash-wasm instantiates its WebAssembly module asynchronously, once. Every way into pgkeep
 * awaits `initHashing()` before it hashes anything: bin/run.js's fast paths, the oclif commands
 * (BaseCommand.init), the worker threads (serveTasks) and the tests (test/setup.ts). After that
 * every function here is synchronous, so that hashing can sit in a hot write loop without an
 * await per chunk. A caller that skipped the init gets an INTERNAL error naming it, not a wrong
 * checksum.
 *
 * This was a top-level await until the backup fast path was bundled as CommonJS, for Node's
 * compile cache (scripts/bundle-hot-commands.js): CommonJS has no top-level await.
 */
import xxhash from 'xxhash-wasm';
import { PgkeepError } from '../errors.js';

type XXHashApi = Awaited<ReturnType<typeof xxhash>>;

export interface Hasher {
  update(bytes: Uint8Array): void;
  /** 16 lower-case hex digits, zero padded. */
  digestHex(): string;
}

let api: XXHashApi | undefined;
let loading: Promise<void> | undefined;

/** Instantiates the WebAssembly module (once; later calls share the first). */
export function initHashing(): Promise<void> {
  loading ??= xxhash().then((loaded) => {
    api = loaded;
  });
  return loading;
}

function hashing(): XXHashApi {
  if (api === undefined) throw new PgkeepError('INTERNAL', 'xxh64 was used before initHashing() finished', 'await initHashing() where this way into pgkeep starts');
  return api;
}

/** A streaming xxh64 (seed 0). */
export function createHasher(): Hasher {
  const state = hashing().create64();
  return {
    update(bytes: Uint8Array): void {
      state.update(bytes);
    },
    digestHex(): string {
      return toHex(state.digest());
    },
  };
}

/** xxh64 (seed 0) of `bytes` as 16 hex digits. */
export function hashHex(bytes: Uint8Array): string {
  return toHex(hashing().h64Raw(bytes));
}

function toHex(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}
