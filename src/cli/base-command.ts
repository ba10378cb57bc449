/**
 * What every pgkeep command shares: the repository flag (-B or PGKEEP_REPO), the reporter that
 * writes progress to stderr, and the one place where errors become a message and exit status.
 * The output itself lives in command-io.ts, which the backup fast path shares; the common flags
 * in common-flags.ts.
 */
import { Command, Interfaces } from '@oclif/core';
import type { RepoContext } from '../app/repo-context.js';
import type { Reporter } from '../app/reporter.js';
import type { Meter, OperationProgress } from '../app/progress.js';
import { isPgkeepError } from '../errors.js';
import { initHashing } from '../repository/hash.js';
import { CommandIo } from './command-io.js';
import type { FigureLine } from './progress-display.js';

export { connectionFlags, progressFlag, repoFlag, threadsFlag, waitFlag } from './common-flags.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<T['flags']>;

export abstract class BaseCommand extends Command {
  protected readonly io = new CommandIo();

  protected get reporter(): Reporter {
    return this.io.reporter;
  }

  /** The progress sink for the command's use case: the --progress display when `show`, else nothing. */
  protected openProgress(show: boolean): OperationProgress {
    return this.io.openProgress(show);
  }

  /** A meter for the command's use case (its figures end the command), showing progress when `show`. */
  protected openMeter(show: boolean): Meter {
    return this.io.openMeter(show);
  }

  /** The end-of-command figures, as INFO on stderr (stdout keeps the result line alone). */
  protected reportFigures(f: FigureLine): void {
    this.io.reportFigures(f);
  }

  protected openRepo(root: string): Promise<RepoContext> {
    return this.io.openRepo(root);
  }

  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  override async init(): Promise<void> {
    await super.init();
    await initHashing();
  }

  override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    // oclif's own errors (bad flags, --help exits) carry their status; let oclif print them.
    if (!isPgkeepError(err) && err.oclif?.exit !== undefined) throw err;
    process.exitCode = this.io.fail(err);
  }

  override async finally(err: Error | undefined): Promise<void> {
    this.io.close();
    await super.finally(err);
  }
}
