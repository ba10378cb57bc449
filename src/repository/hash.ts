/**
 * xxh64 checksums of content and stored bytes (the manifest's `checksum` / `storedChecksum`).
 *
 * xxhash-wasm must instantiate its WebAssembly module once, asynchronously. This module does it
 * with a top-level await, so every function here is synchronous and usable as soon as the module
 * is imported: hashing can sit in a hot write loop without an await per chunk, and no caller can
 * forget an init step. `initHashing()` remains for callers that want to say so explicitly.
 */
import xxhash from 'xxhash-wasm';

type XXHashApi = Awaited<ReturnType<typeof xxhash>>;

export interface Hasher {
  update(bytes: Uint8Array): void;
  /** 16 lower-case hex digits, zero padded. */
  digestHex(): string;
}

const api: XXHashApi = await xxhash();

/** Kept for explicitness: the module is loaded when this file is imported. */
export async function initHashing(): Promise<void> {
  // Nothing left to do; see the note at the top.
}

/** A streaming xxh64 (seed 0). */
export function createHasher(): Hasher {
  const state = api.create64();
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
  return toHex(api.h64Raw(bytes));
}

function toHex(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}
