/**
 * What every pgkeep command shares: the repository flag (-B or PGKEEP_REPO), the reporter that
 * writes progress to stderr, and the one place where errors become a message and exit status.
 */
import { Command, Flags, Interfaces } from '@oclif/core';
import { openRepo, type RepoContext } from '../app/repo-context.js';
import type { Reporter } from '../app/reporter.js';
import { isPgkeepError } from '../errors.js';
import { reportError } from './report-error.js';

export const repoFlag = Flags.string({
  char: 'B',
  aliases: ['backup-path'],
  env: 'PGKEEP_REPO',
  required: true,
  description: 'repository directory (or set PGKEEP_REPO)',
  helpValue: 'DIR',
});

export const instanceFlag = Flags.string({ description: 'instance name', helpValue: 'NAME' });

export const connectionFlags = {
  host: Flags.string({ char: 'h', aliases: ['pghost'], description: 'server host or socket directory (default: PGHOST, then the local socket)' }),
  port: Flags.integer({ char: 'p', aliases: ['pgport'], description: 'server port (default: PGPORT or 5432)' }),
  user: Flags.string({ char: 'U', aliases: ['pguser', 'username'], description: 'user name (default: PGUSER or postgres)' }),
  dbname: Flags.string({ char: 'd', aliases: ['pgdatabase'], description: 'database to connect to (default: PGDATABASE or postgres)' }),
};

export const threadsFlag = Flags.integer({ char: 'j', aliases: ['threads'], default: 1, min: 1, max: 64, description: 'parallel workers' });

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<T['flags']>;

export abstract class BaseCommand extends Command {
  protected ctx: RepoContext | undefined;

  protected readonly reporter: Reporter = {
    info: (m) => {
      if (!this.quiet) process.stderr.write(`INFO: ${m}\n`);
    },
    warn: (m) => process.stderr.write(`WARNING: ${m}\n`),
  };

  protected quiet = false;

  protected async openRepo(root: string): Promise<RepoContext> {
    this.ctx = await openRepo(root, this.reporter);
    return this.ctx;
  }

  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    // oclif's own errors (bad flags, --help exits) carry their status; let oclif print them.
    if (!isPgkeepError(err) && err.oclif?.exit !== undefined) throw err;
    process.exitCode = reportError(err);
  }

  override async finally(err: Error | undefined): Promise<void> {
    this.ctx?.close();
    await super.finally(err);
  }
}
