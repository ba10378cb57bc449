// Where each file of a backup comes from along its chain (core/file-plan.ts), as restore, merge
// and export use it: members handed over newest first, one manifest at a time.
import { describe, expect, it } from 'vitest';
import type { BackupRecord, FileEntry, FileStorage } from '../../src/core/backup-types.js';
import { ChainPlanner } from '../../src/core/file-plan.js';
import { isPgkeepError } from '../../src/errors.js';

function backup(id: string, generation = 0): BackupRecord {
  return { id, generation } as BackupRecord;
}

function entry(path: string, storage: FileStorage): FileEntry {
  return { path, storage, kind: storage === 'none' ? 'dir' : 'data' } as FileEntry;
}

/** Each member as [id, entries], newest first; the planner finished. */
function plan(members: [string, FileEntry[]][]): ChainPlanner {
  const p = new ChainPlanner();
  for (const [id, files] of members) p.add(backup(id, id === 'D2' ? 3 : 0), files);
  p.finish();
  return p;
}

/** The plan's sources as "backup:storage", or the error's code and message. */
function sourcesOf(p: ChainPlanner, e: FileEntry): string[] | string {
  try {
    return p.plan(e).sources.map((s) => `${s.backupId}/${s.generation}:${s.entry.storage}`);
  } catch (err) {
    return isPgkeepError(err) ? `${err.code}: ${err.message}` : String(err);
  }
}

describe('ChainPlanner', () => {
  const target = [entry('base', 'none'), entry('base/5/1', 'delta'), entry('base/5/2', 'parent'), entry('base/5/3', 'full'), entry('base/5/4', 'parent')];
  const p = plan([
    ['D2', target],
    ['D1', [entry('base', 'none'), entry('base/5/1', 'parent'), entry('base/5/2', 'delta'), entry('base/5/4', 'parent')]],
    ['F', [entry('base', 'none'), entry('base/5/1', 'full'), entry('base/5/2', 'full'), entry('base/5/3', 'full'), entry('base/5/4', 'full')]],
  ]);

  it('walks each file down to its full copy, deltas newest first, skipping parents', () => {
    expect(sourcesOf(p, target[1]!)).toEqual(['D2/3:delta', 'F/0:full']);
    expect(sourcesOf(p, target[2]!)).toEqual(['D1/0:delta', 'F/0:full']);
    expect(sourcesOf(p, target[4]!)).toEqual(['F/0:full']);
  });

  it('stops at the newest full copy, and gives directories no source', () => {
    expect(sourcesOf(p, target[3]!)).toEqual(['D2/3:full']);
    expect(sourcesOf(p, target[0]!)).toEqual([]);
  });

  it('refuses a file deferred to a member whose manifest does not list it', () => {
    const broken = plan([
      ['D1', [entry('base/5/9', 'parent'), entry('base/5/1', 'parent')]],
      ['F', [entry('base/5/1', 'full')]],
    ]);
    expect(sourcesOf(broken, entry('base/5/9', 'parent'))).toBe('BACKUP_CORRUPT: base/5/9 is deferred to backup F, whose manifest does not list it');
    expect(sourcesOf(broken, entry('base/5/1', 'parent'))).toEqual(['F/0:full']);
  });

  it('refuses a file that changes kind along the chain, or has no full copy down to the last member', () => {
    const broken = plan([
      ['D1', [entry('a', 'parent'), entry('b', 'delta')]],
      ['F', [entry('a', 'none'), entry('b', 'parent')]],
    ]);
    expect(sourcesOf(broken, entry('a', 'parent'))).toBe('BACKUP_CORRUPT: a changes kind along the chain at backup F');
    expect(sourcesOf(broken, entry('b', 'delta'))).toBe('BACKUP_CORRUPT: no backup down to F stores b whole');
  });

  it('plans nothing before the chain is finished, nor a path the target does not list', () => {
    const open = new ChainPlanner();
    open.add(backup('F'), [entry('a', 'full')]);
    expect(sourcesOf(open, entry('a', 'full'))).toMatch(/^INTERNAL: no plan for a: the chain is not finished/);
    open.finish();
    expect(sourcesOf(open, entry('a', 'full'))).toEqual(['F/0:full']);
    expect(sourcesOf(open, entry('zzz', 'full'))).toMatch(/^INTERNAL: no plan for zzz: not in the target backup/);
    expect(() => open.add(backup('X'), [])).toThrow(/added after the chain's end/);
  });

  it('keeps up with a chain of 400 members, each changing one file', () => {
    const planner = new ChainPlanner();
    const files = (i: number) => [entry('hot', i === 399 ? 'full' : 'delta'), entry('cold', i === 399 ? 'full' : 'parent')];
    for (let i = 0; i < 400; i++) planner.add(backup(`B${i}`), files(i));
    planner.finish();
    expect(planner.members).toHaveLength(400);
    expect(planner.plan(entry('hot', 'delta')).sources).toHaveLength(400);
    expect(planner.plan(entry('cold', 'parent')).sources.map((s) => s.backupId)).toEqual(['B399']);
  });
});
