// Export's scratch directory on a real file system: which leftovers of earlier exports the next
// one removes (this host's, whose process is gone), which it leaves (a live process's, another
// host's, anything not named as a scratch file), that one it cannot remove does not fail the
// export, and that names it gives are new and inside the directory. The end-to-end export
// through scratch files is in e2e/long-chain-restore.test.ts.
import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostTag, prepareScratchFiles } from '../../src/app/export/scratch-files.js';
import { makeTempDir } from '../helpers/tmp.js';

/** The pid of a process that has exited (Linux hands pids out in turn, so not reused this soon). */
async function exitedPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('export scratch files', () => {
  it('removes only this host\'s leftovers whose process is gone, and names new files in the directory', async () => {
    const dir = await makeTempDir('scratch');
    const host = hostTag(hostname());
    const gone = await exitedPid();
    const running = spawn('sleep', ['60']); // another export, still running
    const left = [`.pgkeep-export.${host}.tmp.${gone}.ab12`, `.pgkeep-export.${host}.tmp.${gone}.cd34`];
    const kept = [
      `.pgkeep-export.${host}.tmp.${running.pid}.ab12`, // a live process
      `.pgkeep-export.${host}.tmp.${process.pid}.cd34`, // this process
      `.pgkeep-export.${host}-2.tmp.${gone}.ab12`, // another host, whose process cannot be asked about
      `.pgkeep-export.tmp.${gone}.ab12`, // the naming before hosts were in it
      `notes.txt`,
    ];
    for (const name of [...left, ...kept]) await writeFile(join(dir, name), 'x');

    const scratch = await prepareScratchFiles(dir, 3, 'TEST01', 8).finally(() => running.kill());
    expect([...scratch.removed].sort()).toEqual(left.map((n) => join(dir, n)).sort());
    expect((await readdir(dir)).sort()).toEqual([...kept].sort());

    const a = scratch.next();
    const b = scratch.next();
    expect(a).not.toBe(b);
    expect(dirname(a)).toBe(dir);
    expect(basename(a)).toMatch(new RegExp(`^\\.pgkeep-export\\.${host}\\.tmp\\.${process.pid}\\.[0-9a-f]+$`));
  });

  it('passes over a leftover it cannot remove instead of failing the export', async () => {
    const dir = await makeTempDir('scratch-stuck');
    const gone = await exitedPid();
    const stuck = `.pgkeep-export.${hostTag(hostname())}.tmp.${gone}.ef56`;
    // A directory by that name: unlink refuses it, as it refuses another user's file under /tmp's sticky bit.
    await mkdir(join(dir, stuck, 'inside'), { recursive: true });
    const scratch = await prepareScratchFiles(dir, 1, 'TEST02', 8);
    expect(scratch.removed).toEqual([]);
    expect(await readdir(dir)).toEqual([stuck]);
  });

  it('refuses a directory that does not exist, naming it and how many files need it', async () => {
    const missing = join(await makeTempDir('scratch-parent'), 'absent');
    await expect(prepareScratchFiles(missing, 2, 'TEST03', 8)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `scratch directory ${missing} does not exist: 2 file(s) of backup TEST03 have more than 8 page deltas and are rebuilt through a scratch file`,
    });
  });

  it('makes a host name fit a file name: no dots, nothing outside letters, digits and -', () => {
    expect(hostTag('db1.example.com')).toBe('db1-example-com');
    expect(hostTag('vm')).toBe('vm');
    expect(hostTag('')).toBe('host');
  });
});
