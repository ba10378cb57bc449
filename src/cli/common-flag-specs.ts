/**
 * Flags that many commands share, as plain specs (flag-spec.ts): common-flags.ts makes oclif's
 * flags of them, and the backup fast path parses them without oclif.
 */
import type { BooleanFlagSpec, CustomFlagSpec, IntegerFlagSpec, StringFlagSpec } from './flag-spec.js';
import { parseWaitSeconds } from './wait-argv.js';

export const repoFlagSpec = {
  kind: 'string',
  char: 'B',
  aliases: ['backup-path'],
  env: 'PGKEEP_REPO',
  required: true,
  description: 'repository directory (or set PGKEEP_REPO)',
  helpValue: 'DIR',
} as const satisfies StringFlagSpec;

export const connectionFlagSpecs = {
  host: { kind: 'string', char: 'h', aliases: ['pghost'], description: 'server host or socket directory (default: PGHOST, then the local socket)' },
  port: { kind: 'integer', char: 'p', aliases: ['pgport'], description: 'server port (default: PGPORT or 5432)' },
  user: { kind: 'string', char: 'U', aliases: ['pguser', 'username'], description: 'user name (default: PGUSER or postgres)' },
  dbname: { kind: 'string', char: 'd', aliases: ['pgdatabase'], description: 'database to connect to (default: PGDATABASE or postgres)' },
} as const satisfies Record<string, StringFlagSpec | IntegerFlagSpec>;

export const threadsFlagSpec = { kind: 'integer', char: 'j', aliases: ['threads'], default: 1, min: 1, max: 64, description: 'parallel workers' } as const satisfies IntegerFlagSpec;

/**
 * `--wait[=SECONDS]`: when another pgkeep holds the instance, wait for it (bare: without a limit,
 * which bin/run.js spells `--wait=forever`; see cli/wait-argv.ts). Seconds, Infinity, or
 * undefined without the flag.
 */
export const waitFlagSpec: CustomFlagSpec<number> = {
  kind: 'custom',
  description: 'if another pgkeep command holds the instance, wait for it (alone: as long as it takes; =SECONDS: at most that long)',
  helpValue: '[SECONDS]',
  parse: parseWaitSeconds,
};

export const progressFlagSpec = { kind: 'boolean', default: false, description: 'show progress on stderr: a bar on a terminal, otherwise a line every 5 s' } as const satisfies BooleanFlagSpec;
