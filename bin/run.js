#!/usr/bin/env node
// archive-push / archive-get run once per WAL file: try their oclif-free fast path first
// (src/cli/archive-fast-path.ts); everything else, and anything it does not recognise, goes
// through oclif, after a bare --wait is given its "no limit" value (src/cli/wait-argv.ts: oclif
// has no flag with an optional value). `backup` goes to oclif with its own command only.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// pgkeep has no oclif plugins: oclif need not look for a user's (in ~/.local/share/pgkeep, which
// warns when HOME is another user's, as under `su postgres`) or for development ones.
const NO_PLUGINS = { userPlugins: false, devPlugins: false };

/** The hot commands' module as tsc writes it, and the bundle of it and oclif; relative to the package root. */
const HOT_COMMANDS = 'dist/cli/hot-commands.js';
const HOT_BUNDLE = 'dist/cli/hot-bundle.js';

const [command, ...rest] = process.argv.slice(2);
if (command === 'archive-push' || command === 'archive-get') {
  const { runArchiveFastPath } = await import('../dist/cli/archive-fast-path.js');
  const status = await runArchiveFastPath(command, rest);
  if (status !== undefined) {
    process.exitCode = status;
  } else {
    await runOclif(process.argv.slice(2));
  }
} else {
  const { normalizeWaitArgv } = await import('../dist/cli/wait-argv.js');
  await runOclif(normalizeWaitArgv(process.argv.slice(2)), command === 'backup');
}

async function runOclif(args, alone = false) {
  // oclif checks the Node.js version against its own package.json with semver, 47 modules
  // loaded on every start (15-20 ms); package.json's engines says what pgkeep needs, checked here.
  if (Number(process.versions.node.split('.')[0]) < 20) {
    process.stderr.write(`ERROR: pgkeep needs Node.js 20 or later; this is ${process.version}\n`);
    process.exit(1);
  }
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
  if (!alone) {
    const { execute } = await import('@oclif/core');
    return execute({ args, loadOptions: { root: ROOT, ...NO_PLUGINS } });
  }
  // This command's module only, not every command's (src/cli/hot-commands.ts), from the bundle
  // of it and oclif when the build made one (scripts/bundle-hot-commands.js) and tsc has not
  // written dist/ since: one file loads faster than the ~330 modules it holds.
  const bundled = bundleIsFresh();
  const target = bundled ? HOT_BUNDLE : HOT_COMMANDS;
  const { execute } = await import(bundled ? new URL(`../${HOT_BUNDLE}`, import.meta.url).href : '@oclif/core');
  const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  pjson.oclif.commands = { strategy: 'explicit', target: `./${target}`, identifier: 'default' };
  await execute({ args, loadOptions: { root: ROOT, pjson, ...NO_PLUGINS } });
}

/** The bundle exists and is not older than tsc's output (a build without the bundle step). */
function bundleIsFresh() {
  const bundled = statSync(new URL(`../${HOT_BUNDLE}`, import.meta.url), { throwIfNoEntry: false });
  const compiled = statSync(new URL(`../${HOT_COMMANDS}`, import.meta.url), { throwIfNoEntry: false });
  return bundled !== undefined && compiled !== undefined && bundled.mtimeMs >= compiled.mtimeMs;
}
