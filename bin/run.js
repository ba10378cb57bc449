#!/usr/bin/env node
// archive-push / archive-get run once per WAL file: try their oclif-free fast path first
// (src/cli/archive-fast-path.ts); everything else, and anything it does not recognise, goes
// through oclif, after a bare --wait is given its "no limit" value (src/cli/wait-argv.ts: oclif
// has no flag with an optional value). `backup` goes to oclif with its own command only.
import { fileURLToPath } from 'node:url';

// pgkeep has no oclif plugins: oclif need not look for a user's (in ~/.local/share/pgkeep, which
// warns when HOME is another user's, as under `su postgres`) or for development ones.
const NO_PLUGINS = { userPlugins: false, devPlugins: false };

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
    return execute({ args, loadOptions: { root: fileURLToPath(new URL('..', import.meta.url)), ...NO_PLUGINS } });
  }
  // This command's module only, not every command's (src/cli/hot-commands.ts), from the bundle
  // of it and oclif when the build made one (scripts/bundle-hot-commands.js) and tsc has not
  // written dist/ since: one file loads faster than the ~330 modules it holds.
  const { readFileSync, statSync } = await import('node:fs');
  const bundle = freshBundle(statSync);
  const { execute } = await import(bundle ? bundle.href : '@oclif/core');
  const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const target = bundle ? './dist/cli/hot-bundle.js' : './dist/cli/hot-commands.js';
  pjson.oclif.commands = { strategy: 'explicit', target, identifier: 'default' };
  await execute({ args, loadOptions: { root: fileURLToPath(new URL('..', import.meta.url)), pjson, ...NO_PLUGINS } });
}

/** dist/cli/hot-bundle.js, unless it is missing or older than tsc's output (a build without the bundle step). */
function freshBundle(statSync) {
  const bundle = new URL('../dist/cli/hot-bundle.js', import.meta.url);
  const bundled = statSync(bundle, { throwIfNoEntry: false });
  const compiled = statSync(new URL('../dist/cli/hot-commands.js', import.meta.url), { throwIfNoEntry: false });
  return bundled && compiled && bundled.mtimeMs >= compiled.mtimeMs ? bundle : undefined;
}
