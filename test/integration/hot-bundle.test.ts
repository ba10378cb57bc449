// `backup` starts from one bundled file (scripts/bundle-hot-commands.js, bin/run.js): the build
// must make it and V8's code cache of it, bin/run.js must run it with that cache, the bundled code
// must still find what lies beside its modules (migrations, package.json), a cache that does not
// fit must only cost the compile, and a bundle older than tsc's output must not run. The
// backup fast path it holds leaves --help and the flags it rejects to oclif, which must still
// print them as for any command. The archive commands have a bundle of their own (at the end).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PGKEEP_BIN } from '../helpers/cli.js';
import { withModuleInFreshNode } from '../helpers/fresh-node.js';

const checkout = resolve(PGKEEP_BIN, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'pgkeep-hot-bundle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Counts, at exit, the modules of @oclif/core that Node loaded from node_modules (the bundle holds its own copy). */
const COUNT_OCLIF_MODULES =
  "data:text/javascript,import { createRequire } from 'node:module'; const r = createRequire('/'); " +
  "process.on('exit', () => process.stderr.write('oclif modules loaded: ' + Object.keys(r.cache).filter((k) => k.includes('@oclif/core')).length + '\\n'));";

/** How V8 took the bundle's code cache when compile-cache.ts ran it: used, rejected or absent. */
function codeCacheUse(bundle: string): string {
  return withModuleInFreshNode(join(resolve(bundle, '..'), 'compile-cache.js'), `process.stdout.write(m.runWithCodeCache(${JSON.stringify(bundle)}).codeCache);`);
}

/** A copy of the build, with what it needs linked, so that the checkout's own bundle stays as it is for the other tests. */
function copyOfBuild(name: string): string {
  const copy = join(work, name);
  cpSync(join(checkout, 'bin'), join(copy, 'bin'), { recursive: true });
  cpSync(join(checkout, 'dist'), join(copy, 'dist'), { recursive: true, preserveTimestamps: true });
  cpSync(join(checkout, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(checkout, 'migrations'), join(copy, 'migrations'));
  symlinkSync(join(checkout, 'node_modules'), join(copy, 'node_modules'));
  return copy;
}

function backupOfUnknownInstance(bin: string, repo: string) {
  const init = spawnSync(process.execPath, [bin, 'init', '-B', repo], { encoding: 'utf8' });
  expect(init.status, init.stderr).toBe(0);
  const r = spawnSync(process.execPath, ['--import', COUNT_OCLIF_MODULES, bin, 'backup', '-B', repo, '--instance', 'nope', '-b', 'FULL', '--stream'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', PGKEEP_DEBUG: '1' } });
  const loaded = Number(/oclif modules loaded: (\d+)/.exec(r.stderr)?.[1]);
  // bin/run.js says which code cache the bundle ran with, and says nothing when the unbundled modules serve.
  return { status: r.status, stderr: r.stderr, oclifModulesLoaded: loaded, bundled: /code cache of the backup bundle/.test(r.stderr) };
}

describe('the bundled backup command', () => {
  it('is built with its code cache, and bin/run.js runs it, with the catalog and its migrations found', () => {
    const bundle = join(checkout, 'dist', 'cli', 'hot-bundle.cjs');
    expect(statSync(bundle).mtimeMs).toBeGreaterThanOrEqual(statSync(join(checkout, 'dist', 'cli', 'backup-fast-path.js')).mtimeMs);
    expect(statSync(`${bundle}.v8cache`).size).toBeGreaterThan(100_000);
    expect(codeCacheUse(bundle)).toBe('used');
    // Its first line is its id, a hash of the rest (the trained caches are named by it), and the
    // source map allows for that line: a function of the bundle maps to its line in src/.
    const [first, ...rest] = readFileSync(bundle, 'utf8').split('\n');
    expect(first).toBe(`// pgkeep-bundle-id: ${createHash('sha256').update(rest.join('\n')).digest('hex').slice(0, 32)}`);
    const line = rest.findIndex((l) => l.startsWith('function instanceNotFound(')) + 1;
    const entry = new SourceMap(JSON.parse(readFileSync(`${bundle}.map`, 'utf8')) as SourceMapPayload).findEntry(line, 0);
    expect('originalSource' in entry && entry.originalSource).toMatch(/src\/catalog\/catalog\.ts$/);
    const original = 'originalLine' in entry ? readFileSync(join(checkout, 'src', 'catalog', 'catalog.ts'), 'utf8').split('\n')[entry.originalLine] : undefined;
    expect(original).toMatch(/^function instanceNotFound\(/);
    const r = backupOfUnknownInstance(PGKEEP_BIN, join(work, 'repo-a'));
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/instance "nope" not found in the catalog/);
    expect(r.bundled).toBe(true);
    // The fast path parses its flags without oclif (cli/plain-flag-parser.ts): none of oclif is
    // loaded from node_modules, and the bundle holds no copy of it either.
    expect(r.oclifModulesLoaded).toBe(0);
    expect(rest.join('\n')).not.toMatch(/node_modules\/@oclif\//);
  });

  it('runs as before when its code cache is damaged or missing: V8 compiles it instead', () => {
    const copy = copyOfBuild('damaged-cache');
    const bundle = join(copy, 'dist', 'cli', 'hot-bundle.cjs');
    writeFileSync(`${bundle}.v8cache`, Buffer.alloc(4096, 0x5a));
    expect(codeCacheUse(bundle)).toBe('rejected');
    const damaged = backupOfUnknownInstance(join(copy, 'bin', 'run.js'), join(work, 'repo-c'));
    expect(damaged.status).toBe(3);
    expect(damaged.stderr).toMatch(/instance "nope" not found in the catalog/);
    expect(damaged.oclifModulesLoaded).toBe(0);
    rmSync(`${bundle}.v8cache`);
    expect(codeCacheUse(bundle)).toBe('absent');
    const missing = backupOfUnknownInstance(join(copy, 'bin', 'run.js'), join(work, 'repo-d'));
    expect(missing.status).toBe(3);
    expect(missing.stderr).toMatch(/instance "nope" not found in the catalog/);
  });

  it('is not run once tsc has written dist/ after it: the unbundled modules are', () => {
    const copy = copyOfBuild('stale');
    const later = new Date(statSync(join(copy, 'dist', 'cli', 'hot-bundle.cjs')).mtimeMs + 60_000);
    utimesSync(join(copy, 'dist', 'cli', 'backup-fast-path.js'), later, later);

    const r = backupOfUnknownInstance(join(copy, 'bin', 'run.js'), join(work, 'repo-b'));
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/instance "nope" not found in the catalog/);
    expect(r.bundled).toBe(false);
    expect(r.oclifModulesLoaded).toBe(0);
  });

  it('leaves --help and a rejected command line to oclif, which prints them as usual', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [PGKEEP_BIN, 'backup', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', PGKEEP_REPO: join(work, 'repo-a') } });
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Take a backup of a running cluster/);
    expect(help.stdout).toMatch(/--backup-mode/);
    const missing = run('--instance', 'nope');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/Missing required flag[\s\S]*backup-mode/);
    const unknown = run('--instance', 'nope', '-b', 'FULL', '--bogus');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Nonexistent flag: --bogus/);
    const badMode = run('--instance', 'nope', '-b', 'WEEKLY');
    expect(badMode.status).toBe(2);
    expect(badMode.stderr).toMatch(/Expected --backup-mode=WEEKLY to be one of: FULL, /);
  });
});

/** archive-get of a file in a repository that does not exist, with PGKEEP_DEBUG: how bin/run.js loaded the fast path, and what it said. */
function archiveGetInMissingRepo(bin: string) {
  const r = spawnSync(process.execPath, [bin, 'archive-get', '-B', join(work, 'no-repo'), '--instance', 'i', '--wal-file-path', join(work, 'seg'), '--wal-file-name', '000000010000000000000001'], {
    encoding: 'utf8',
    env: { ...process.env, PGKEEP_DEBUG: '1' },
  });
  return { status: r.status, stderr: r.stderr, cache: /code cache of the archive bundle: (\w+)/.exec(r.stderr)?.[1] };
}

// The archive commands start from a bundle of their own, made the same way (PostgreSQL starts
// them once per WAL file). The e2e archive tests run it for real, zstd included.
describe('the bundled archive commands', () => {
  it('are built with their code cache, which bin/run.js uses', () => {
    const bundle = join(checkout, 'dist', 'cli', 'archive-bundle.cjs');
    expect(statSync(bundle).mtimeMs).toBeGreaterThanOrEqual(statSync(join(checkout, 'dist', 'cli', 'archive-fast-path.js')).mtimeMs);
    expect(statSync(`${bundle}.v8cache`).size).toBeGreaterThan(10_000);
    expect(codeCacheUse(bundle)).toBe('used');
    const r = archiveGetInMissingRepo(PGKEEP_BIN);
    expect(r.cache).toBe('used');
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^ERROR: .*no-repo/m);
  });

  it('run as before with a damaged code cache, and unbundled once tsc has written dist/ after the bundle', () => {
    const copy = copyOfBuild('archive-bundle');
    const bundle = join(copy, 'dist', 'cli', 'archive-bundle.cjs');
    writeFileSync(`${bundle}.v8cache`, Buffer.alloc(4096, 0x5a));
    const damaged = archiveGetInMissingRepo(join(copy, 'bin', 'run.js'));
    expect(damaged.cache).toBe('rejected');
    expect(damaged.status).toBe(4);
    const later = new Date(statSync(bundle).mtimeMs + 60_000);
    utimesSync(join(copy, 'dist', 'cli', 'archive-fast-path.js'), later, later);
    const stale = archiveGetInMissingRepo(join(copy, 'bin', 'run.js'));
    expect(stale.cache).toBeUndefined();
    expect(stale.status).toBe(4);
    expect(stale.stderr).toMatch(/^ERROR: .*no-repo/m);
  });
});

/** A --require'd file that says at exit whether Node ran an ES module (its loader's module jobs). */
function esModuleProbe(): string {
  const probe = join(work, 'es-module-probe.cjs');
  writeFileSync(probe, "process.on('exit', () => process.stderr.write('ES modules run: ' + process.moduleLoadList.includes('NativeModule internal/modules/esm/module_job') + '\\n'));\n");
  return probe;
}

/** Runs bin/run.js under the probe: its exit status, what it printed, and whether an ES module ran. */
function runProbed(bin: string, args: string[]) {
  const r = spawnSync(process.execPath, ['--require', esModuleProbe(), bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stderr: r.stderr, esModules: /ES modules run: (true|false)/.exec(r.stderr)?.[1] };
}

// bin/run.js is CommonJS (bin/package.json), and so is everything a fast path loads from a fresh
// build (the bundles, and dist/cli/launcher.cjs for bin/run.js's own helpers): Node's ES module
// loader, a few milliseconds of every start, is not run. A launcher that is missing or older than
// tsc's output is passed over for the ES modules of dist/, and every command still works.
describe('the launcher', () => {
  const archiveGet = ['archive-get', '-B', join(work, 'no-repo'), '--instance', 'i', '--wal-file-path', join(work, 'seg'), '--wal-file-name', '000000010000000000000001'];
  const backup = (repo: string) => ['backup', '-B', repo, '--instance', 'nope', '-b', 'FULL', '--stream'];

  it('runs the archive and backup fast paths of a fresh build without any ES module', () => {
    const get = runProbed(PGKEEP_BIN, archiveGet);
    expect(get.status, get.stderr).toBe(4);
    expect(get.stderr).toMatch(/^ERROR: .*no-repo/m);
    expect(get.esModules).toBe('false');
    const repo = join(work, 'repo-launcher');
    expect(spawnSync(process.execPath, [PGKEEP_BIN, 'init', '-B', repo]).status).toBe(0);
    const b = runProbed(PGKEEP_BIN, backup(repo));
    expect(b.status, b.stderr).toBe(3);
    expect(b.stderr).toMatch(/instance "nope" not found in the catalog/);
    expect(b.esModules).toBe('false');
  });

  it('is passed over when stale or missing: the ES modules of dist/ serve instead', () => {
    const copy = copyOfBuild('launcher');
    const bin = join(copy, 'bin', 'run.js');
    const repo = join(work, 'repo-launcher-copy');
    expect(spawnSync(process.execPath, [bin, 'init', '-B', repo]).status).toBe(0);
    const launcher = join(copy, 'dist', 'cli', 'launcher.cjs');
    const later = new Date(statSync(launcher).mtimeMs + 60_000);
    utimesSync(join(copy, 'dist', 'cli', 'wait-argv.js'), later, later);
    const stale = runProbed(bin, backup(repo));
    expect(stale.status, stale.stderr).toBe(3);
    expect(stale.stderr).toMatch(/instance "nope" not found in the catalog/);
    expect(stale.esModules).toBe('true');
    rmSync(launcher);
    const missing = runProbed(bin, [...backup(repo), '--wait']);
    expect(missing.status, missing.stderr).toBe(3);
    expect(missing.esModules).toBe('true');
    const get = runProbed(bin, archiveGet);
    expect(get.status, get.stderr).toBe(4);
  });
});
