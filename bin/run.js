#!/usr/bin/env node
// archive-push / archive-get run once per WAL file, and backup may run every few minutes: each
// tries its oclif-free fast path first (src/cli/archive-fast-path.ts, src/cli/backup-fast-path.ts,
// each from one bundled file with V8's code cache, when the build made them). Everything
// else, and anything a fast path does not take (--help, a flag it rejects), goes through oclif,
// after a bare --wait is given its "no limit" value (src/cli/wait-argv.ts: oclif has no flag with
// an optional value).
//
// This file is CommonJS (bin/package.json), and so are the bundles and the launcher's helpers it
// loads (dist/cli/launcher.cjs): a start that meets no ES module skips Node's ES module loader,
// 4-7 ms of every start (docs/performance.md, "A CommonJS launcher"). The unbundled modules of
// dist/ are ES modules, loaded with import() when the bundles are missing or older than tsc's
// output.
'use strict';
const { readFileSync, statSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const ROOT = join(__dirname, '..');

// pgkeep has no oclif plugins: oclif need not look for a user's (in ~/.local/share/pgkeep, which
// warns when HOME is another user's, as under `su postgres`) or for development ones.
const NO_PLUGINS = { userPlugins: false, devPlugins: false };

/** The fast paths as tsc writes them, and the bundles of them; relative to the package root. */
const BACKUP_FAST_PATH = 'dist/cli/backup-fast-path.js';
const HOT_BUNDLE = 'dist/cli/hot-bundle.cjs';
const ARCHIVE_FAST_PATH = 'dist/cli/archive-fast-path.js';
const ARCHIVE_BUNDLE = 'dist/cli/archive-bundle.cjs';
/** The helpers this file needs (wait-argv, the code caches), bundled as CommonJS, and one of their sources. */
const LAUNCHER = 'dist/cli/launcher.cjs';
const LAUNCHER_SOURCE = 'dist/cli/wait-argv.js';
/** Whether launcher.cjs serves, found out once (launcherHelper): a backup asks for two of its helpers. */
let launcherFresh;

assertRuntime();
// Unhandled, a failure here is printed with its stack and exits 1, as an ES module's would.
void main();

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'archive-push' || command === 'archive-get') {
    const { runArchiveFastPath } = await loadArchiveFastPath();
    const status = await runArchiveFastPath(command, rest);
    if (status !== undefined) {
      process.exitCode = status;
    } else {
      await runOclif(process.argv.slice(2));
    }
    return;
  }
  const { normalizeWaitArgv } = await launcherHelper('wait-argv.js');
  const args = normalizeWaitArgv(process.argv.slice(2));
  const status = command === 'backup' ? await runBackup(args.slice(1)) : undefined;
  if (status !== undefined) {
    process.exitCode = status;
  } else {
    await runOclif(args, command === 'backup');
  }
}

async function runBackup(args) {
  // From the bundle when the build made one (scripts/bundle-hot-commands.js) and tsc has not
  // written dist/ since: one file, compiled from V8's code cache, loads faster than the ~250
  // modules it holds. The cache is the one an earlier backup of the same mode saved, with every
  // function it compiled, or else the build's; a backup that succeeds without the former saves
  // it (src/cli/trained-code-cache.ts).
  if (bundleIsFresh(HOT_BUNDLE, BACKUP_FAST_PATH)) {
    const { backupModeLabel, runBundle } = await launcherHelper('trained-code-cache.js');
    const bundle = runBundle(join(ROOT, HOT_BUNDLE), backupModeLabel(args));
    debug(`code cache of the backup bundle: ${bundle.codeCache}${bundle.trainedFile ? `; this mode's trained one: ${bundle.trainedFile}` : ''}`);
    const status = await bundle.exports.runBackupFastPath(args);
    if (status === 0 && bundle.saveTrained()) debug(`trained code cache saved: ${bundle.trainedFile}`);
    return status;
  }
  const { runBackupFastPath } = await importFromDist(BACKUP_FAST_PATH);
  return runBackupFastPath(args);
}

/**
 * The archive fast path, from its bundle with the build's code cache when the build made it
 * (scripts/bundle-hot-commands.js): PostgreSQL starts it for every WAL file.
 */
async function loadArchiveFastPath() {
  if (!bundleIsFresh(ARCHIVE_BUNDLE, ARCHIVE_FAST_PATH)) return importFromDist(ARCHIVE_FAST_PATH);
  const { runWithCodeCache } = await launcherHelper('compile-cache.js');
  const bundle = runWithCodeCache(join(ROOT, ARCHIVE_BUNDLE));
  debug(`code cache of the archive bundle: ${bundle.codeCache}`);
  return bundle.exports;
}

async function runOclif(args, alone = false) {
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
  const { execute } = await import('@oclif/core');
  if (!alone) return execute({ args, loadOptions: { root: ROOT, ...NO_PLUGINS } });
  // This command's module only, not every command's (src/cli/hot-commands.ts).
  const pjson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  pjson.oclif.commands = { strategy: 'explicit', target: './dist/cli/hot-commands.js', identifier: 'default' };
  await execute({ args, loadOptions: { root: ROOT, pjson, ...NO_PLUGINS } });
}

/** PGKEEP_DEBUG (also used for stack traces) says which code cache a backup used: tests check it. */
function debug(line) {
  if (process.env.PGKEEP_DEBUG) process.stderr.write(`DEBUG: ${line}\n`);
}

// Checked here, before any of pgkeep loads, for every command:
// - the Node.js version: oclif checks it against its own package.json with semver, 47 modules
//   loaded on every start (15-20 ms); package.json's engines says what pgkeep needs;
// - WebAssembly, which pgkeep's hashes (xxhash-wasm) and page checksums run in. `node --jitless`
//   (NODE_OPTIONS too) has none, and pgkeep would stop with a ReferenceError from deep inside.
function assertRuntime() {
  if (Number(process.versions.node.split('.')[0]) < 20) {
    process.stderr.write(`ERROR: pgkeep needs Node.js 20 or later; this is ${process.version}\n`);
    process.exit(1);
  }
  if (typeof WebAssembly === 'undefined') {
    process.stderr.write('ERROR: pgkeep needs WebAssembly, for its checksums, and this Node.js runs without it\n');
    process.stderr.write('HINT: run node without --jitless (on its command line and in NODE_OPTIONS)\n');
    process.exit(1);
  }
}

/** The bundle exists and is not older than tsc's output of its entry (a build without the bundle step). */
function bundleIsFresh(bundle, entry) {
  const bundled = statSync(join(ROOT, bundle), { throwIfNoEntry: false });
  const compiled = statSync(join(ROOT, entry), { throwIfNoEntry: false });
  return bundled !== undefined && compiled !== undefined && bundled.mtimeMs >= compiled.mtimeMs;
}

/**
 * The exports of dist/cli/`name` (one of the modules launcher.cjs holds): from the launcher when
 * the build made it and tsc has not written dist/ since, else the ES module itself.
 */
function launcherHelper(name) {
  launcherFresh ??= bundleIsFresh(LAUNCHER, LAUNCHER_SOURCE);
  return launcherFresh ? require(join(ROOT, LAUNCHER)) : importFromDist(`dist/cli/${name}`);
}

/** An ES module of dist/ by its path from the package root. */
function importFromDist(path) {
  return import(pathToFileURL(join(ROOT, path)).href);
}
