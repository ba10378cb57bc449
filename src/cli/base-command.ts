/**
 * What every pgkeep command shares: the repository flag (-B or PGKEEP_REPO), the reporter that
 * writes progress to stderr, and the one place where errors become a message and exit status.
 */
import { Command, Flags, Interfaces } from '@oclif/core';
import { openRepo, type RepoContext } from '../app/repo-context.js';
import type { Reporter } from '../app/reporter.js';
import { Meter, silentProgress, type OperationProgress } from '../app/progress.js';
import { isPgkeepError } from '../errors.js';
import { createProgressDisplay, figuresLine, type FigureLine, type ProgressDisplay } from './progress-display.js';
import { reportError } from './report-error.js';
import { parseWaitSeconds } from './wait-argv.js';

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

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<T['flags']>;

export abstract class BaseCommand extends Command {
  protected ctx: RepoContext | undefined;

  protected readonly reporter: Reporter = {
    info: (m) => {
      if (!this.quiet) this.writeMessage(`INFO: ${m}`);
    },
    warn: (m) => this.writeMessage(`WARNING: ${m}`),
  };

  protected quiet = false;

  /** The --progress display while one is shown: messages go through it so that they do not garble a bar. */
  private display: ProgressDisplay | undefined;

  private writeMessage(line: string): void {
    if (this.display) this.display.log(line);
    else process.stderr.write(`${line}\n`);
  }

  /** The progress sink for the command's use case: the --progress display when `show`, else nothing. */
  protected openProgress(show: boolean): OperationProgress {
    this.display?.close();
    this.display = show ? createProgressDisplay(process.stderr) : undefined;
    return this.display ?? silentProgress;
  }

  /** A meter for the command's use case (its figures end the command), showing progress when `show`. */
  protected openMeter(show: boolean): Meter {
    return new Meter(this.openProgress(show));
  }

  /** The end-of-command figures, as INFO on stderr (stdout keeps the result line alone). */
  protected reportFigures(f: FigureLine): void {
    this.display?.close();
    this.display = undefined;
    this.reporter.info(figuresLine(f));
  }

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
    this.display?.close();
    this.display = undefined;
    process.exitCode = reportError(err);
  }

  override async finally(err: Error | undefined): Promise<void> {
    this.display?.close();
    this.ctx?.close();
    await super.finally(err);
  }
}
