/**
 * Flags that many commands share. Imported from oclif's `flags` module alone, not its index, so
 * that the backup fast path (backup-fast-path.ts) parses them without loading the rest of oclif.
 */
import * as Flags from '@oclif/core/flags';
import { parseWaitSeconds } from './wait-argv.js';

export const repoFlag = Flags.string({
  char: 'B',
  aliases: ['backup-path'],
  env: 'PGKEEP_REPO',
  required: true,
  description: 'repository directory (or set PGKEEP_REPO)',
  helpValue: 'DIR',
});

export const connectionFlags = {
  host: Flags.string({ char: 'h', aliases: ['pghost'], description: 'server host or socket directory (default: PGHOST, then the local socket)' }),
  port: Flags.integer({ char: 'p', aliases: ['pgport'], description: 'server port (default: PGPORT or 5432)' }),
  user: Flags.string({ char: 'U', aliases: ['pguser', 'username'], description: 'user name (default: PGUSER or postgres)' }),
  dbname: Flags.string({ char: 'd', aliases: ['pgdatabase'], description: 'database to connect to (default: PGDATABASE or postgres)' }),
};

export const threadsFlag = Flags.integer({ char: 'j', aliases: ['threads'], default: 1, min: 1, max: 64, description: 'parallel workers' });

/**
 * `--wait[=SECONDS]`: when another pgkeep holds the instance, wait for it (bare: without a limit,
 * which bin/run.js spells `--wait=forever` for oclif; see cli/wait-argv.ts). Seconds, Infinity, or
 * undefined without the flag.
 */
export const waitFlag = Flags.custom<number>({
  description: 'if another pgkeep command holds the instance, wait for it (alone: as long as it takes; =SECONDS: at most that long)',
  helpValue: '[SECONDS]',
  parse: async (input) => parseWaitSeconds(input),
})();

export const progressFlag = Flags.boolean({ default: false, description: 'show progress on stderr: a bar on a terminal, otherwise a line every 5 s' });
