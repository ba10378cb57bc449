/**
 * Runs a CommonJS file with V8's code cache: the bytecode V8 compiled for it, saved by the build
 * beside the file, so that a start does not compile the ~900 KB backup bundle again (about 30 ms
 * of a PTRACK backup of a small change; docs/performance.md). Node 20 has no compile cache of
 * its own (module.enableCompileCache is Node 22), and vm.Script takes one only for a script,
 * hence CommonJS.
 *
 * V8 checks the cache against its own version and flags and the source's length: a cache that
 * does not fit (another Node.js, a bundle of another length, a damaged file) is rejected and the
 * source compiled, as without one. A missing cache is no error either. V8 does not compare the
 * source's text, so a cache must only meet the source it was made for: the build writes the two
 * together, and the caches later runs save are named by the bundle's id (trained-code-cache.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import vm from 'node:vm';

export type CodeCacheUse = 'used' | 'rejected' | 'absent';

export interface LoadedScript {
  exports: Record<string, unknown>;
  codeCache: CodeCacheUse;
  /** V8's cache for the script as compiled so far (the build saves it). */
  createCache(): Buffer;
}

/** Where the build saves the code cache of `path`. */
export function codeCachePath(path: string): string {
  return `${path}.v8cache`;
}

/**
 * Runs the CommonJS module at `path` (as require would), with a code cache when it fits: by
 * default the build's, beside the file; `chooseCache` may pick another once the source is read
 * (trained-code-cache.ts: this user's, keyed by the bundle's id in its first line).
 */
export function runWithCodeCache(path: string, chooseCache: (source: string) => Buffer | undefined = () => readCache(codeCachePath(path))): LoadedScript {
  const source = readFileSync(path, 'utf8');
  const cachedData = chooseCache(source);
  const script = new vm.Script(Module.wrap(source), {
    filename: path,
    ...(cachedData ? { cachedData } : {}),
    // An import() inside runs as it would in a module Node loaded itself.
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const codeCache: CodeCacheUse = cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used';
  type Wrapper = (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  const wrapper = script.runInThisContext() as Wrapper;
  const module = { exports: {} as Record<string, unknown> };
  wrapper.call(module.exports, module.exports, createRequire(path), module, path, dirname(path));
  return { exports: module.exports, codeCache, createCache: () => script.createCachedData() };
}

/**
 * Runs the module at `path` and saves V8's cache of it, for runWithCodeCache (the build's step).
 * Compiled from the source alone, never from the cache a build before left beside it: V8 would
 * take that one for a rebuilt bundle of the same length, run the old bundle's code, and save it
 * again as this one's.
 */
export function saveCodeCache(path: string): number {
  const cache = runWithCodeCache(path, () => undefined).createCache();
  writeFileSync(codeCachePath(path), cache);
  return cache.length;
}

/** The file's bytes, or undefined when it cannot be read (a missing cache is no error). */
export function readCache(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}
