/**
 * Parses a command line against plain flag specs (flag-spec.ts) as oclif's parser does, but only
 * the plain forms that scripts and schedulers write: `--name value`, `--name=value`, `-c value`,
 * `--flag` and `--no-flag`. Anything else gives undefined: a repeated flag, a short flag with its
 * value attached, a value that starts with `-`, an argument that is not a flag, `--`, and every
 * command line oclif would reject (a missing or unknown flag, a value it refuses). The caller
 * then hands the command line to oclif, which parses it or prints what is wrong, as for any
 * command. So this parser never reports an error of its own, and what it accepts it reads as
 * oclif does (test/unit/plain-flag-parser.test.ts runs both over the same command lines).
 *
 * Design note. The backup fast path (backup-fast-path.ts) used oclif's parser, which is fine in
 * itself, but its module loads oclif's errors, help, spinners and templates: 8-11 ms of each
 * backup's start (docs/performance.md, "The backup fast path without oclif"). A second parser of
 * the same specs costs less than that, and declining is its one way to fail.
 */
import type { FlagSpec, FlagSpecs, ParsedFlags } from './flag-spec.js';

/** A value the parser leaves to oclif. */
const DECLINE = Symbol('decline');

export function parsePlainFlags<F extends FlagSpecs>(argv: readonly string[], specs: F, env: Readonly<Record<string, string | undefined>> = process.env): ParsedFlags<F> | undefined {
  const given = givenFlags(argv, specs);
  if (given === undefined) return undefined;
  const flags: Record<string, unknown> = {};
  const set = new Set<string>();
  for (const [name, spec] of Object.entries(specs)) {
    let input = given.get(name);
    if (input === undefined && spec.env !== undefined && env[spec.env]) {
      // oclif reads a boolean from its variable by its own notion of truth: left to it.
      if (spec.kind === 'boolean') return undefined;
      input = env[spec.env];
    }
    if (input === undefined) {
      if (spec.required) return undefined;
      if (spec.kind !== 'custom' && spec.default !== undefined) flags[name] = spec.default;
      continue;
    }
    const value = valueOf(spec, input);
    if (value === DECLINE) return undefined;
    flags[name] = value;
    set.add(name);
  }
  for (const name of set) {
    if (specs[name]!.exclusive?.some((other) => set.has(other))) return undefined;
  }
  return flags as ParsedFlags<F>;
}

/** The flags given on the command line, by name: a value, or true/false for a boolean; undefined to decline. */
function givenFlags(argv: readonly string[], specs: FlagSpecs): Map<string, string | boolean> | undefined {
  const byLong = new Map<string, string>();
  const byChar = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) {
    byLong.set(name, name);
    for (const alias of spec.aliases ?? []) byLong.set(alias, name);
    if (spec.char !== undefined) byChar.set(spec.char, name);
  }
  const given = new Map<string, string | boolean>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let name: string | undefined;
    let attached: string | undefined;
    let negated = false;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const long = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (eq !== -1) attached = arg.slice(eq + 1);
      name = byLong.get(long);
      if (name === undefined && long.startsWith('no-')) {
        const base = byLong.get(long.slice(3));
        const spec = base === undefined ? undefined : specs[base];
        if (spec?.kind === 'boolean' && spec.allowNo) {
          name = base;
          negated = true;
        }
      }
    } else if (arg.length === 2 && arg.startsWith('-')) {
      name = byChar.get(arg[1]!);
    }
    if (name === undefined || given.has(name)) return undefined;
    if (specs[name]!.kind === 'boolean') {
      if (attached !== undefined) return undefined;
      given.set(name, !negated);
      continue;
    }
    const value = attached ?? argv[++i];
    if (value === undefined || value === '' || value.startsWith('-')) return undefined;
    given.set(name, value);
  }
  return given;
}

function valueOf(spec: FlagSpec, input: string | boolean): unknown {
  if (spec.kind === 'boolean') return typeof input === 'boolean' ? input : DECLINE;
  if (typeof input !== 'string') return DECLINE;
  switch (spec.kind) {
    case 'string':
      return spec.options !== undefined && !spec.options.includes(input) ? DECLINE : input;
    case 'integer': {
      // As oclif's integer flag: digits with an optional sign, then its bounds.
      if (!/^-?\d+$/.test(input)) return DECLINE;
      const n = Number.parseInt(input, 10);
      return (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max) ? DECLINE : n;
    }
    case 'custom':
      try {
        return spec.parse(input);
      } catch {
        return DECLINE;
      }
  }
}
