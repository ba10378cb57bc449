/**
 * How use cases talk to the person running them, without printing: commands inject a reporter
 * that writes to the terminal; tests inject one that records.
 */
export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
}

export const silentReporter: Reporter = {
  info: () => undefined,
  warn: () => undefined,
};
