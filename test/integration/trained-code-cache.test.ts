// The code cache a backup saves once it has run (src/cli/trained-code-cache.ts): saved after a
// run that did not start from it, used by the next run of the same mode and bundle, never read
// from a file or directory someone else could write, never met by another bundle, and rejected
// by V8 (then rewritten) when damaged. Each run is a fresh Node.js process, as each backup is:
// within one process V8 would reuse what it compiled and ignore any cache.
import { chmodSync, chownSync, copyFileSync, existsSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupModeLabel, trainedCacheDir } from '../../src/cli/trained-code-cache.js';
import { PGKEEP_BIN } from '../helpers/cli.js';
import { withModuleInFreshNode } from '../helpers/fresh-node.js';
import { postgresUser } from '../helpers/run-as-postgres.js';
import { makeTempDir } from '../helpers/tmp.js';

const dist = resolve(PGKEEP_BIN, '..', '..', 'dist', 'cli');
const ID_A = 'a'.repeat(32);
const ID_B = 'b'.repeat(32);

/** A small bundle with functions its top level does not call (V8 compiles those lazily). */
function bundleText(id: string, modulus = 1000003): string {
  const fns = Array.from({ length: 40 }, (_, i) => `function f${i}(n) { let s = ${i}; for (let k = 0; k < n; k++) s = (s * 31 + k) % ${modulus}; return s; }`);
  return `// pgkeep-bundle-id: ${id}\n'use strict';\n${fns.join('\n')}\nexports.work = function work() { let t = 0; ${fns.map((_, i) => `t += f${i}(10);`).join(' ')} return t; };\n`;
}

interface RunReport {
  codeCache: string;
  saved: boolean;
  file: string | null;
  result: number;
}

/** Runs the bundle in a fresh process as bin/run.js does: runBundle, its work, then saveTrained. */
function runOnce(bundle: string, label: string, dir: string | undefined): RunReport {
  const out = withModuleInFreshNode(join(dist, 'trained-code-cache.js'), `
    const b = m.runBundle(${JSON.stringify(bundle)}, ${JSON.stringify(label)}, ${dir === undefined ? 'undefined' : JSON.stringify(dir)});
    const result = b.exports.work();
    const saved = b.saveTrained();
    process.stdout.write(JSON.stringify({ codeCache: b.codeCache, saved, file: b.trainedFile ?? null, result }));`);
  return JSON.parse(out) as RunReport;
}

/** Runs the bundle with the given cache file, as compile-cache.ts does, whatever its name. */
function runWithCacheFile(bundle: string, cacheFile: string): { codeCache: string; result: number } {
  const out = withModuleInFreshNode(join(dist, 'compile-cache.js'), `
    const b = m.runWithCodeCache(${JSON.stringify(bundle)}, () => m.readCache(${JSON.stringify(cacheFile)}));
    process.stdout.write(JSON.stringify({ codeCache: b.codeCache, result: b.exports.work() }));`);
  return JSON.parse(out) as { codeCache: string; result: number };
}

/** The build's step: the cache of the bundle's top level, beside it (compile-cache.ts). */
function saveBuildCache(bundle: string): void {
  withModuleInFreshNode(join(dist, 'compile-cache.js'), `m.saveCodeCache(${JSON.stringify(bundle)});`);
}

const trainedName = (id: string, label: string) => `backup-${id}-${process.version}-${label}.v8cache`;

describe('the code cache a backup trains', () => {
  let work: string;
  let bundle: string;
  let dir: string;
  let expected: number;

  beforeAll(async () => {
    work = await makeTempDir('trained-cache');
    bundle = join(work, 'bundle.cjs');
    writeFileSync(bundle, bundleText(ID_A));
    saveBuildCache(bundle);
    dir = join(work, 'cache', 'pgkeep');
    expected = runOnce(bundle, 'PTRACK', join(work, 'unused')).result;
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('is saved after a run from the build cache, private to the user, with the functions the run compiled; the next run of the mode uses it', () => {
    rmSync(dir, { recursive: true, force: true });
    const first = runOnce(bundle, 'PTRACK', dir);
    expect(first).toMatchObject({ codeCache: 'build', saved: true, result: expected, file: join(dir, trainedName(ID_A, 'PTRACK')) });
    const st = statSync(first.file!);
    expect(st.mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    // More than the build's cache of the top level: the bodies of work() and f0..f39 are in it.
    expect(st.size).toBeGreaterThan(statSync(`${bundle}.v8cache`).size + 2000);

    const second = runOnce(bundle, 'PTRACK', dir);
    expect(second).toMatchObject({ codeCache: 'trained', saved: false, result: expected });
    expect(statSync(first.file!).mtimeMs).toBe(st.mtimeMs);

    // Another mode has its own.
    expect(runOnce(bundle, 'DELTA', dir)).toMatchObject({ codeCache: 'build', saved: true, file: join(dir, trainedName(ID_A, 'DELTA')) });
    expect(runOnce(bundle, 'DELTA', dir)).toMatchObject({ codeCache: 'trained', saved: false });
  });

  it('is not read when someone else could have written it, or through a link; a private one replaces it', () => {
    const file = join(dir, trainedName(ID_A, 'PTRACK'));
    runOnce(bundle, 'PTRACK', dir);
    expect(runOnce(bundle, 'PTRACK', dir).codeCache).toBe('trained');

    chmodSync(file, 0o666);
    expect(runOnce(bundle, 'PTRACK', dir)).toMatchObject({ codeCache: 'build', saved: true });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(runOnce(bundle, 'PTRACK', dir).codeCache).toBe('trained');

    const other = postgresUser();
    chownSync(file, other.uid, other.gid);
    expect(runOnce(bundle, 'PTRACK', dir)).toMatchObject({ codeCache: 'build', saved: true });
    expect(statSync(file).uid).toBe(process.geteuid!());

    // The directory writable by others: nothing is read from it, and nothing saved in it.
    chmodSync(dir, 0o777);
    expect(runOnce(bundle, 'PTRACK', dir)).toMatchObject({ codeCache: 'build', saved: false, result: expected });
    chmodSync(dir, 0o700);
    expect(runOnce(bundle, 'PTRACK', dir).codeCache).toBe('trained');

    // A link to a private cache of this very bundle: refused for being a link, and replaced.
    const target = join(work, 'elsewhere.v8cache');
    copyFileSync(file, target);
    chmodSync(target, 0o600);
    rmSync(file);
    symlinkSync(target, file);
    expect(runOnce(bundle, 'PTRACK', dir)).toMatchObject({ codeCache: 'build', saved: true });
    expect(statSync(file).isFile()).toBe(true);
  });

  it('is rejected by V8 when damaged, costing only the compile, and then saved again', () => {
    const file = join(dir, trainedName(ID_A, 'PTRACK'));
    runOnce(bundle, 'PTRACK', dir);
    writeFileSync(file, Buffer.alloc(statSync(file).size, 0x5a), { mode: 0o600 });
    expect(runOnce(bundle, 'PTRACK', dir)).toMatchObject({ codeCache: 'rejected', saved: true, result: expected });
    expect(runOnce(bundle, 'PTRACK', dir)).toMatchObject({ codeCache: 'trained', saved: false, result: expected });
  });

  it('never meets another bundle: a rebuilt one of the same length trains its own; the oldest caches beyond twelve are removed', () => {
    // Same length, other code and id: V8 alone (which checks the length) would take A's cache
    // and run A's functions.
    const rebuilt = join(work, 'rebuilt.cjs');
    const text = bundleText(ID_B, 1000033);
    expect(text.length).toBe(bundleText(ID_A).length);
    writeFileSync(rebuilt, text);
    saveBuildCache(rebuilt);
    const run = runOnce(rebuilt, 'PTRACK', dir);
    expect(run).toMatchObject({ codeCache: 'build', saved: true, file: join(dir, trainedName(ID_B, 'PTRACK')) });
    expect(run.result).not.toBe(expected);
    // Why the id: handed A's trained cache, V8 runs A's functions for B's text.
    expect(runWithCacheFile(rebuilt, join(dir, trainedName(ID_A, 'PTRACK')))).toEqual({ codeCache: 'used', result: expected });
    expect(runOnce(rebuilt, 'PTRACK', dir)).toMatchObject({ codeCache: 'trained', result: run.result });
    expect(runOnce(bundle, 'PTRACK', dir)).toMatchObject({ codeCache: 'trained', result: expected });

    for (let i = 0; i < 14; i++) {
      const path = join(dir, `backup-${'c'.repeat(31)}${i.toString(16)}-${process.version}-FULL.v8cache`);
      writeFileSync(path, 'old', { mode: 0o600 });
      utimesSync(path, new Date(2020, 0, 1 + i), new Date(2020, 0, 1 + i));
    }
    writeFileSync(join(dir, 'notes.txt'), 'not a cache');
    expect(runOnce(rebuilt, 'PAGE', dir).saved).toBe(true);
    const left = readdirSync(dir).filter((n) => n.endsWith('.v8cache'));
    expect(left).toHaveLength(12);
    expect(left).toContain(trainedName(ID_B, 'PAGE'));
    expect(left).toContain(trainedName(ID_B, 'PTRACK'));
    // Four of today, and the eight newest of the fourteen old ones.
    const old = (i: number) => `backup-${'c'.repeat(31)}${i.toString(16)}-${process.version}-FULL.v8cache`;
    expect(left).toContain(old(13));
    expect(left).toContain(old(6));
    expect(left).not.toContain(old(5));
    expect(left).not.toContain(old(0));
    expect(readdirSync(dir)).toContain('notes.txt');
  });

  it('is neither read nor saved for a bundle without an id, or when turned off', () => {
    const plain = join(work, 'plain.cjs');
    writeFileSync(plain, bundleText(ID_A).split('\n').slice(1).join('\n'));
    saveBuildCache(plain);
    expect(runOnce(plain, 'PTRACK', dir)).toMatchObject({ codeCache: 'build', saved: false, file: null, result: expected });
    expect(runOnce(bundle, 'PTRACK', undefined).file).not.toContain(work); // the default: the user's home, not this dir
    // .cache/pgkeep is made in a home that exists, but no home is made.
    const homeless = join(work, 'no-such-home', '.cache', 'pgkeep');
    expect(runOnce(bundle, 'PTRACK', homeless)).toMatchObject({ codeCache: 'build', saved: false, result: expected });
    expect(existsSync(join(work, 'no-such-home'))).toBe(false);
    expect(trainedCacheDir({ PGKEEP_CODE_CACHE_DIR: 'off' })).toBeUndefined();
    expect(trainedCacheDir({ PGKEEP_CODE_CACHE_DIR: '' })).toBeUndefined();
    expect(trainedCacheDir({ PGKEEP_CODE_CACHE_DIR: '/x/y' })).toBe('/x/y');
    expect(trainedCacheDir({ XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/pgkeep');
    expect(trainedCacheDir({ XDG_CACHE_HOME: 'relative' })).toMatch(/\/\.cache\/pgkeep$/);
    expect(trainedCacheDir({ HOME: '/somewhere/else' })).not.toContain('/somewhere/else');
  });

  it('is kept per backup mode, as the command line names it', () => {
    expect(backupModeLabel(['--instance', 'main', '-b', 'PTRACK', '--stream'])).toBe('PTRACK');
    expect(backupModeLabel(['-bDELTA'])).toBe('DELTA');
    expect(backupModeLabel(['-b=FULL'])).toBe('FULL');
    expect(backupModeLabel(['--backup-mode', 'PAGE'])).toBe('PAGE');
    expect(backupModeLabel(['--backup-mode=FULL', '-j', '2'])).toBe('FULL');
    expect(backupModeLabel(['--', '-b', 'FULL'])).toBe('other');
    expect(backupModeLabel(['-b', '../../etc'])).toBe('other');
    expect(backupModeLabel(['--instance', 'main'])).toBe('other');
  });
});

// The build's own cache (scripts/bundle-hot-commands.js, compile-cache.ts's saveCodeCache) is
// made again by every build, beside a cache the build before left. A rebuilt bundle of the same
// length must not be compiled from that one: V8 would take it, since it checks only the length,
// and the new cache would hold the old bundle's code (a rebuild that only moved code once made
// every PTRACK backup fail with a SyntaxError from the old bundle's source positions).
describe("the build's code cache", () => {
  /** A bundle whose top level and one function give `value` (4 digits: every such bundle has the same length). */
  const valued = (id: string, value: number) => `// pgkeep-bundle-id: ${id}\n'use strict';\nexports.top = ${value};\nexports.work = function work() { return ${value} + 1; };\n`;

  function runWithBuildCache(bundle: string): { codeCache: string; top: number; work: number } {
    const out = withModuleInFreshNode(join(dist, 'compile-cache.js'), `
      const b = m.runWithCodeCache(${JSON.stringify(bundle)});
      process.stdout.write(JSON.stringify({ codeCache: b.codeCache, top: b.exports.top, work: b.exports.work() }));`);
    return JSON.parse(out) as { codeCache: string; top: number; work: number };
  }

  it('of a rebuilt bundle of the same length holds the new code, not the old', async () => {
    const work = await makeTempDir('build-cache');
    const bundle = join(work, 'bundle.cjs');
    expect(valued(ID_A, 1111).length).toBe(valued(ID_B, 2222).length);
    writeFileSync(bundle, valued(ID_A, 1111));
    saveBuildCache(bundle);
    expect(runWithBuildCache(bundle)).toEqual({ codeCache: 'used', top: 1111, work: 1112 });
    writeFileSync(bundle, valued(ID_B, 2222));
    saveBuildCache(bundle);
    expect(runWithBuildCache(bundle)).toEqual({ codeCache: 'used', top: 2222, work: 2223 });
  });
});
