import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initRepositoryRoot, openRepositoryRoot, REPOSITORY_FORMAT_VERSION } from '../../src/repository/format-file.js';

describe('repository format file', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'pgkeep-format-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('initialises a new directory and opens it', async () => {
    const root = join(base, 'repo');
    const { id, version } = await initRepositoryRoot(root);
    expect(version).toBe(REPOSITORY_FORMAT_VERSION);
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    const body = JSON.parse(await readFile(join(root, 'pgkeep.repo'), 'utf8'));
    expect(body).toMatchObject({ format: 'pgkeep-repository', version: 1, id });
    expect(Number.isNaN(Date.parse(body.created))).toBe(false);
    const opened = await openRepositoryRoot(root);
    expect(opened).toMatchObject({ id, version: 1, root });
  });

  it('initialises an existing empty directory', async () => {
    await expect(initRepositoryRoot(base)).resolves.toMatchObject({ version: 1 });
  });

  it('refuses a non-empty directory and a second init', async () => {
    await writeFile(join(base, 'something'), 'x');
    await expect(initRepositoryRoot(base)).rejects.toMatchObject({ code: 'REPO_NOT_EMPTY', hint: expect.stringContaining('empty directory') });
    const root = join(base, 'repo');
    await initRepositoryRoot(root);
    await expect(initRepositoryRoot(root)).rejects.toMatchObject({ code: 'REPO_NOT_EMPTY', message: expect.stringContaining('already a pgkeep repository') });
  });

  it('refuses to open what is not a repository', async () => {
    await expect(openRepositoryRoot(join(base, 'missing'))).rejects.toMatchObject({ code: 'REPO_NOT_FOUND', hint: expect.stringContaining('pgkeep init') });
    await mkdir(join(base, 'plain'));
    await expect(openRepositoryRoot(join(base, 'plain'))).rejects.toMatchObject({ code: 'REPO_NOT_FOUND' });
    await writeFile(join(base, 'plain', 'pgkeep.repo'), '{"format":"something-else","version":1}');
    await expect(openRepositoryRoot(join(base, 'plain'))).rejects.toMatchObject({ code: 'REPO_FORMAT_UNSUPPORTED' });
    await writeFile(join(base, 'plain', 'pgkeep.repo'), 'not json');
    await expect(openRepositoryRoot(join(base, 'plain'))).rejects.toMatchObject({ code: 'REPO_FORMAT_UNSUPPORTED' });
  });

  it('refuses a newer format version', async () => {
    const root = join(base, 'repo');
    await initRepositoryRoot(root);
    const path = join(root, 'pgkeep.repo');
    const body = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...body, version: 2 }));
    await expect(openRepositoryRoot(root)).rejects.toMatchObject({ code: 'REPO_FORMAT_UNSUPPORTED', hint: 'upgrade pgkeep' });
  });
});
