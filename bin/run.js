#!/usr/bin/env node
// archive-push / archive-get run once per WAL file: try their oclif-free fast path first
// (src/cli/archive-fast-path.ts); everything else, and anything it does not recognise, goes
// through oclif.
const [command, ...rest] = process.argv.slice(2);
if (command === 'archive-push' || command === 'archive-get') {
  const { runArchiveFastPath } = await import('../dist/cli/archive-fast-path.js');
  const status = await runArchiveFastPath(command, rest);
  if (status !== undefined) {
    process.exitCode = status;
  } else {
    await runOclif();
  }
} else {
  await runOclif();
}

async function runOclif() {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
}
