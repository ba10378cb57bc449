// The interrupted attempt of the resume tests (docs/resume.md). A backup without --stream on a
// server whose archive_command always fails copies everything, journals it, and then waits for
// its WAL to reach the archive: a deterministic point to kill it with -9, or, with a short
// --archive-timeout, to watch it fail on its own and keep its journalled files.
import { type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { spawnPgkeep } from '../helpers/cli.js';
import { sleep } from '../helpers/faults.js';
import type { RepoFixture } from './pgkeep-fixture.js';

export interface Attempt {
  child: ChildProcess;
  id: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export const backupDir = (fx: RepoFixture, id: string): string => join(fx.repo, 'instances', fx.instance, 'backups', id);

/** A relation's stored file in backup `id`; one larger than a part stands as its first part. */
export function storedFile(fx: RepoFixture, id: string, path: string): string {
  const whole = join(backupDir(fx, id), 'data', path);
  return existsSync(whole) ? whole : `${whole}.part0`;
}

/** The entries the journal of `id` names (lines are `<xxh64> <json>`, the first the header). */
export async function journalEntries(fx: RepoFixture, id: string): Promise<{ path: string; parts?: unknown[] }[]> {
  const text = await readFile(join(backupDir(fx, id), 'resume.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.length > 17)
    .map((l) => JSON.parse(l.slice(17)) as { path: string; parts?: unknown[] });
}

export const journalPaths = async (fx: RepoFixture, id: string): Promise<string[]> => (await journalEntries(fx, id)).map((e) => e.path);

/**
 * Starts a backup without --stream and returns once it waits for the archive, with `lastPath`
 * (a relation file it copies late) in its journal and a moment more for the lines behind it.
 */
export async function startWaitingAttempt(fx: RepoFixture, mode: 'FULL' | 'DELTA', archiveTimeout: number, lastPath: string): Promise<Attempt> {
  const child = spawnPgkeep(['backup', '--instance', fx.instance, '-b', mode, '-j', '2', '--archive-timeout', String(archiveTimeout)], { env: { PGKEEP_REPO: fx.repo } });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdout?.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const deadline = Date.now() + 60_000;
  while (!/waiting for the backup's WAL/.test(stderr) && Date.now() < deadline && child.exitCode === null) await sleep(50);
  expect(stderr).toMatch(/waiting for the backup's WAL/);
  const id = /backup (\S+) started at LSN/.exec(stderr)?.[1];
  if (!id) throw new Error(`no backup id in:\n${stderr}`);
  // Every stored file is journalled within a second of being stored.
  while (!(await journalPaths(fx, id)).includes(lastPath) && Date.now() < deadline) await sleep(100);
  await sleep(1200);
  return { child, id, stderr: () => stderr, exited };
}

export async function killAttempt(a: Attempt): Promise<void> {
  a.child.kill('SIGKILL');
  await a.exited;
}
