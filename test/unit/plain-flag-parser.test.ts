// The backup fast path parses its flags without oclif (src/cli/plain-flag-parser.ts), from the
// same specs that oclif's flags of the `backup` command are made from (src/cli/oclif-flags.ts).
// It must never read a command line differently from oclif: what it accepts, oclif accepts with
// the same flags; what oclif rejects, it leaves alone (undefined), so that oclif says what is
// wrong. Both parsers run here, oclif's for real, over the same command lines.
import { parse } from '@oclif/core/parser';
import { afterEach, describe, expect, it } from 'vitest';
import { backupFlagSpecs } from '../../src/cli/backup-command.js';
import { oclifFlags } from '../../src/cli/oclif-flags.js';
import { parsePlainFlags } from '../../src/cli/plain-flag-parser.js';

const savedRepo = process.env.PGKEEP_REPO;
afterEach(() => {
  if (savedRepo === undefined) delete process.env.PGKEEP_REPO;
  else process.env.PGKEEP_REPO = savedRepo;
});

/** oclif's flags for `argv`, or the message it rejects the command line with. oclif reads PGKEEP_REPO from process.env. */
async function oclifParse(argv: string[], repoEnv: string | undefined): Promise<{ flags: Record<string, unknown> } | { error: string }> {
  if (repoEnv === undefined) delete process.env.PGKEEP_REPO;
  else process.env.PGKEEP_REPO = repoEnv;
  try {
    const r = await parse(argv, { flags: oclifFlags(backupFlagSpecs), strict: true });
    return { flags: r.flags as Record<string, unknown> };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** The flags with a value: oclif leaves an absent flag out or undefined, as may the plain parser. */
function defined(flags: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
}

const base = ['--instance', 'main', '-b', 'FULL'];

/** Command lines as scripts and schedulers write them: the plain parser must take every one, as oclif does. */
const plain: [string, string[], string | undefined][] = [
  ['the repository from PGKEEP_REPO', base, '/r'],
  ['the repository from -B over PGKEEP_REPO', ['-B', '/flag', ...base], '/env'],
  ['a PTRACK backup as the benchmark takes it', ['-B', '/r', '--instance', 'main', '-b', 'PTRACK', '--stream', '-j', '2', '--no-validate', '--compress-algorithm', 'none', '--parent', 'TP1G3X'], undefined],
  ['values after =, and the long aliases', ['--backup-path=/r', '--instance=main', '--backup-mode=DELTA', '--threads=4', '--note', 'nightly run', '--archive-timeout', '60'], undefined],
  ['--resume', [...base, '--resume'], '/r'],
  ['--no-resume', [...base, '--no-resume'], '/r'],
  ['--validate given', [...base, '--validate'], '/r'],
  ['a bare --wait as bin/run.js spells it', [...base, '--wait=forever'], '/r'],
  ['--wait with seconds', [...base, '--wait', '30'], '/r'],
  ['--wait with a fraction', [...base, '--wait=2.5'], '/r'],
  ['a pin for a time', [...base, '--ttl', '7d'], '/r'],
  ['a pin until a date', [...base, '--expire-time', '2027-01-01 00:00:00+00'], '/r'],
  ['the connection by letters', [...base, '-h', '/tmp', '-p', '5433', '-U', 'postgres', '-d', 'app'], '/r'],
  ['the connection by libpq names', [...base, '--pghost', 'db1', '--pgport', '5432', '--username', 'backup', '--pgdatabase', 'postgres'], '/r'],
  ['every boolean and the level', [...base, '--stream', '--progress', '--skip-block-validation', '--skip-space-check', '--delete-expired', '--merge-expired', '--delete-wal', '--compress-level', '3', '--compress-algorithm', 'zstd'], '/r'],
  ['-j at its bounds', [...base, '-j', '64'], '/r'],
];

/** Command lines oclif rejects: the plain parser must leave each to oclif. */
const rejected: [string, string[], string | undefined][] = [
  ['no instance', ['-b', 'FULL'], '/r'],
  ['no mode', ['--instance', 'main'], '/r'],
  ['no repository', base, undefined],
  ['an unknown flag', [...base, '--bogus'], '/r'],
  ['an unknown letter', [...base, '-x'], '/r'],
  ['an unknown mode', ['--instance', 'main', '-b', 'WEEKLY'], '/r'],
  ['an unknown compression', [...base, '--compress-algorithm', 'brotli'], '/r'],
  ['-j 0', [...base, '-j', '0'], '/r'],
  ['-j 65', [...base, '-j', '65'], '/r'],
  ['-j two', [...base, '-j', 'two'], '/r'],
  ['--archive-timeout 0', [...base, '--archive-timeout', '0'], '/r'],
  ['--port 5432.5', [...base, '--port', '5432.5'], '/r'],
  ['--ttl with --expire-time', [...base, '--ttl', '1d', '--expire-time', '2027-01-01'], '/r'],
  ['--wait=soon', [...base, '--wait=soon'], '/r'],
  ['--instance twice', [...base, '--instance', 'other'], '/r'],
  ['an argument', [...base, 'extra'], '/r'],
  ['a value on a boolean', [...base, '--stream=true'], '/r'],
  ['--no- of a flag without it', [...base, '--no-stream'], '/r'],
  ['a flag without its value', [...base, '--note'], '/r'],
  ['a flag whose value is a flag', ['--instance', '-b', 'FULL'], '/r'],
];

describe('the plain flag parser of the backup fast path', () => {
  for (const [what, argv, env] of plain) {
    it(`reads ${what} as oclif does`, async () => {
      const mine = parsePlainFlags(argv, backupFlagSpecs, { PGKEEP_REPO: env });
      const theirs = await oclifParse(argv, env);
      expect('flags' in theirs ? 'parsed' : theirs.error).toBe('parsed');
      expect(mine).toBeDefined();
      expect(defined(mine as Record<string, unknown>)).toEqual(defined((theirs as { flags: Record<string, unknown> }).flags));
    });
  }

  for (const [what, argv, env] of rejected) {
    it(`leaves ${what} to oclif, which rejects it`, async () => {
      const theirs = await oclifParse(argv, env);
      expect('error' in theirs, JSON.stringify(theirs)).toBe(true);
      expect(parsePlainFlags(argv, backupFlagSpecs, { PGKEEP_REPO: env })).toBeUndefined();
    });
  }

  it('leaves forms it does not read to oclif, which reads them', async () => {
    // A short flag with its value attached, a value that starts with '-', `--`, an empty value:
    // oclif takes each; the plain parser need not, and must not guess.
    const forms = [
      [...base, '-j2'],
      [...base, '--note', '-quoted'],
      [...base, '--compress-level', '-1'],
      [...base, '--note='],
      [...base, '--'],
    ];
    for (const argv of forms) {
      expect(parsePlainFlags(argv, backupFlagSpecs, { PGKEEP_REPO: '/r' }), argv.join(' ')).toBeUndefined();
    }
    // And oclif does read the first one, so declining it costs only the time oclif takes.
    const theirs = await oclifParse([...base, '-j2'], '/r');
    expect('flags' in theirs && theirs.flags.threads).toBe(2);
  });
});
