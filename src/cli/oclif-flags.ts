/**
 * oclif's flags made from plain specs (flag-spec.ts), for the oclif commands: their parser, their
 * --help and their flag errors. The backup fast path parses the same specs without oclif
 * (plain-flag-parser.ts); test/unit/plain-flag-parser.test.ts holds the two to the same result.
 */
import * as Flags from '@oclif/core/flags';
import type { Interfaces } from '@oclif/core';
import type { Always, FlagSpec, FlagSpecs, FlagValue } from './flag-spec.js';

/** The oclif flag of a spec, typed so that oclif infers the parsed value as the spec says. */
export type OclifFlagOf<S> = S extends { kind: 'boolean' }
  ? Interfaces.BooleanFlag<boolean>
  : Interfaces.OptionFlag<Always<S> extends true ? FlagValue<S> : FlagValue<S> | undefined>;

export function oclifFlag<S extends FlagSpec>(spec: S): OclifFlagOf<S> {
  const common = {
    description: spec.description,
    ...(spec.char === undefined ? {} : { char: spec.char as Interfaces.AlphabetLowercase | Interfaces.AlphabetUppercase }),
    ...(spec.aliases === undefined ? {} : { aliases: [...spec.aliases] }),
    ...(spec.env === undefined ? {} : { env: spec.env }),
    ...(spec.required === undefined ? {} : { required: spec.required }),
    ...(spec.exclusive === undefined ? {} : { exclusive: [...spec.exclusive] }),
    ...(spec.helpValue === undefined ? {} : { helpValue: spec.helpValue }),
  };
  // One cast for the four kinds: each branch gives oclif the spec's own attributes, and the type
  // above says what oclif then parses.
  switch (spec.kind) {
    case 'string':
      return Flags.string({ ...common, ...(spec.options ? { options: [...spec.options] } : {}), ...(spec.default === undefined ? {} : { default: spec.default }) }) as unknown as OclifFlagOf<S>;
    case 'integer':
      return Flags.integer({ ...common, ...(spec.min === undefined ? {} : { min: spec.min }), ...(spec.max === undefined ? {} : { max: spec.max }), ...(spec.default === undefined ? {} : { default: spec.default }) }) as unknown as OclifFlagOf<S>;
    case 'boolean':
      return Flags.boolean({ ...common, allowNo: spec.allowNo ?? false, ...(spec.default === undefined ? {} : { default: spec.default }) }) as unknown as OclifFlagOf<S>;
    case 'custom': {
      const parse = spec.parse;
      // Flags.custom's overloads cannot take a value type only known as unknown here.
      const custom = Flags.custom as unknown as (defaults: object) => () => unknown;
      return custom({ ...common, parse: async (input: string) => parse(input) })() as OclifFlagOf<S>;
    }
  }
}

export function oclifFlags<F extends FlagSpecs>(specs: F): { [K in keyof F]: OclifFlagOf<F[K]> } {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, oclifFlag(spec)])) as { [K in keyof F]: OclifFlagOf<F[K]> };
}
