/**
 * A command's flags as plain data, without oclif. From one spec, oclif-flags.ts builds the flags
 * of the oclif command (its parser, its --help), and plain-flag-parser.ts parses the common
 * command lines of the backup fast path without loading oclif at all: oclif's flag module alone
 * pulls in 74 modules (its errors, help, spinners, ejs), 8-11 ms of every backup's start
 * (docs/performance.md, "The backup fast path without oclif").
 */

interface FlagSpecBase {
  description: string;
  /** One letter: `-j 2`. */
  char?: string;
  /** Other long names. */
  aliases?: readonly string[];
  /** Read when the flag is not given and the variable is set (not empty). */
  env?: string;
  required?: boolean;
  /** Flags that may not be given with this one. */
  exclusive?: readonly string[];
  /** In --help: what the value is (`DIR`, `NAME`). */
  helpValue?: string;
}

export interface StringFlagSpec extends FlagSpecBase {
  kind: 'string';
  options?: readonly string[];
  default?: string;
}

export interface IntegerFlagSpec extends FlagSpecBase {
  kind: 'integer';
  min?: number;
  max?: number;
  default?: number;
}

export interface BooleanFlagSpec extends FlagSpecBase {
  kind: 'boolean';
  /** `--no-NAME` gives false. */
  allowNo?: boolean;
  default?: boolean;
}

/** A value turned into something else by `parse`, which throws when the value is not acceptable. */
export interface CustomFlagSpec<T> extends FlagSpecBase {
  kind: 'custom';
  parse(input: string): T;
}

export type FlagSpec = StringFlagSpec | IntegerFlagSpec | BooleanFlagSpec | CustomFlagSpec<unknown>;

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** What a flag's value is once parsed. */
export type FlagValue<S> = S extends { kind: 'string' }
  ? string
  : S extends { kind: 'integer' }
    ? number
    : S extends { kind: 'boolean' }
      ? boolean
      : S extends CustomFlagSpec<infer T>
        ? T
        : never;

/** A flag that always has a value: required, or with a default. */
export type Always<S> = S extends { required: true } ? true : S extends { default: string | number | boolean } ? true : false;

/** The parsed flags of `F`: as oclif gives them, a flag that may be absent is optional. */
export type ParsedFlags<F extends FlagSpecs> = {
  -readonly [K in keyof F as Always<F[K]> extends true ? K : never]: FlagValue<F[K]>;
} & {
  -readonly [K in keyof F as Always<F[K]> extends true ? never : K]?: FlagValue<F[K]> | undefined;
};
