#!/usr/bin/env node
// archive-push / archive-get run once per WAL file: try their oclif-free fast path first
// (src/cli/archive-fast-path.ts); everything else, and anything it does not recognise, goes
// through oclif, after a bare --wait is given its "no limit" value (src/cli/wait-argv.ts: oclif
// has no flag with an optional value). `backup` goes to oclif with its own command only.
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
  const { execute } = await import('@oclif/core');
  if (!alone) return execute({ args, dir: import.meta.url });
  // This command's module only, not every command's (src/cli/hot-commands.ts).
  const { readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  pjson.oclif.commands = { strategy: 'explicit', target: './dist/cli/hot-commands.js', identifier: 'default' };
  await execute({ args, loadOptions: { root: fileURLToPath(new URL('..', import.meta.url)), pjson } });
}
