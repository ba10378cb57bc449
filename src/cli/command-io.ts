/**
 * What a running command shows and holds, apart from oclif: the reporter (INFO and WARNING on
 * stderr, written through the --progress display while one is shown), that display, the
 * end-of-command figures, the result lines on stdout, and the repository it opened. BaseCommand
 * gives one to every oclif command; the backup fast path (backup-fast-path.ts) uses one without
 * oclif, so that both print the same.
 */
import { openRepo, type RepoContext } from '../app/repo-context.js';
import type { Reporter } from '../app/reporter.js';
import { Meter, silentProgress, type OperationProgress } from '../app/progress.js';
import type { ExitStatusValue } from '../errors.js';
import { createProgressDisplay, figuresLine, type FigureLine, type ProgressDisplay } from './progress-display.js';
import { reportError } from './report-error.js';

export class CommandIo {
  readonly reporter: Reporter = {
    info: (m) => this.writeMessage(`INFO: ${m}`),
    warn: (m) => this.writeMessage(`WARNING: ${m}`),
  };

  /** The --progress display while one is shown: messages go through it so that they do not garble a bar. */
  private display: ProgressDisplay | undefined;

  private ctx: RepoContext | undefined;

  /** A result line on stdout. */
  log(line: string): void {
    process.stdout.write(`${line}\n`);
  }

  /** The progress sink for the command's use case: the --progress display when `show`, else nothing. */
  openProgress(show: boolean): OperationProgress {
    this.closeDisplay();
    this.display = show ? createProgressDisplay(process.stderr) : undefined;
    return this.display ?? silentProgress;
  }

  /** A meter for the command's use case (its figures end the command), showing progress when `show`. */
  openMeter(show: boolean): Meter {
    return new Meter(this.openProgress(show));
  }

  /** The end-of-command figures, as INFO on stderr (stdout keeps the result line alone). */
  reportFigures(f: FigureLine): void {
    this.closeDisplay();
    this.reporter.info(figuresLine(f));
  }

  /** Opens the repository, which close() closes. */
  async openRepo(root: string): Promise<RepoContext> {
    return this.holdRepo(await openRepo(root, this.reporter));
  }

  /** A repository opened otherwise (catalog rebuild), for close() to close. */
  holdRepo(ctx: RepoContext): RepoContext {
    this.ctx = ctx;
    return ctx;
  }

  /** Reports an error (report-error.ts) below whatever the display showed; the exit status. */
  fail(err: unknown): ExitStatusValue {
    this.closeDisplay();
    return reportError(err);
  }

  /** Ends what the command opened: the display, the repository. */
  close(): void {
    this.closeDisplay();
    this.ctx?.close();
    this.ctx = undefined;
  }

  private closeDisplay(): void {
    this.display?.close();
    this.display = undefined;
  }

  private writeMessage(line: string): void {
    if (this.display) this.display.log(line);
    else process.stderr.write(`${line}\n`);
  }
}
