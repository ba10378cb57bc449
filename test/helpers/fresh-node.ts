// Code that must run as each pgkeep run does, in a Node.js process of its own: V8 takes a code
// cache only when it compiles a script, and within one process it compiles a script once.
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { expect } from 'vitest';

/**
 * Imports the module at `path` in a fresh Node.js process and runs `body` (JavaScript, the module
 * bound to `m`); returns what it wrote to stdout, and fails the test when the process fails.
 */
export function withModuleInFreshNode(path: string, body: string): string {
  const script = `import(${JSON.stringify(pathToFileURL(path).href)}).then((m) => { ${body} })`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}
