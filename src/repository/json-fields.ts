/**
 * Typed reads of fields from parsed JSON in the repository (backup.json, manifest lines,
 * instance.json). Every mismatch becomes MANIFEST_CORRUPT naming the file and the field, so a
 * damaged repository file is reported as such instead of failing later with a TypeError.
 */
import { parseLsn, type Lsn } from '../core/lsn.js';
import { errorMessage, isPgkeepError, PgkeepError } from '../errors.js';

export const CORRUPT_HINT = 'run `pgkeep validate` to check the repository';

export function corruptFile(source: string, what: string): PgkeepError {
  return new PgkeepError('MANIFEST_CORRUPT', `${source} is corrupt: ${what}`, CORRUPT_HINT);
}

/** Parse JSON text that must be an object. */
export function parseJsonObject(text: string, source: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw corruptFile(source, `not valid JSON (${errorMessage(e)})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corruptFile(source, 'not a JSON object');
  return v as Record<string, unknown>;
}

export class JsonFields {
  constructor(
    readonly obj: Record<string, unknown>,
    readonly source: string,
  ) {}

  has(name: string): boolean {
    return this.obj[name] !== undefined;
  }

  string(name: string): string {
    const v = this.obj[name];
    if (typeof v !== 'string') throw this.bad(name, 'a string');
    return v;
  }

  nullableString(name: string): string | null {
    return this.obj[name] === null ? null : this.string(name);
  }

  optionalString(name: string): string | undefined {
    return this.obj[name] === undefined ? undefined : this.string(name);
  }

  number(name: string): number {
    const v = this.obj[name];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.bad(name, 'a number');
    return v;
  }

  /** A non-negative integer (sizes, counts, modes). */
  count(name: string): number {
    const v = this.number(name);
    if (!Number.isSafeInteger(v) || v < 0) throw this.bad(name, 'a non-negative integer');
    return v;
  }

  optionalCount(name: string): number | undefined {
    return this.obj[name] === undefined ? undefined : this.count(name);
  }

  integer(name: string): number {
    const v = this.number(name);
    if (!Number.isSafeInteger(v)) throw this.bad(name, 'an integer');
    return v;
  }

  nullableInteger(name: string): number | null {
    return this.obj[name] === null ? null : this.integer(name);
  }

  boolean(name: string): boolean {
    const v = this.obj[name];
    if (typeof v !== 'boolean') throw this.bad(name, 'true or false');
    return v;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T {
    const v = this.obj[name];
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw this.bad(name, `one of ${values.join(', ')}`);
    return v as T;
  }

  date(name: string): Date {
    const d = new Date(this.string(name));
    if (Number.isNaN(d.getTime())) throw this.bad(name, 'an ISO date');
    return d;
  }

  nullableDate(name: string): Date | null {
    return this.obj[name] === null ? null : this.date(name);
  }

  lsn(name: string): Lsn {
    const text = this.string(name);
    try {
      return parseLsn(text);
    } catch (e) {
      if (isPgkeepError(e)) throw this.bad(name, 'an LSN like 0/16B3F28');
      throw e;
    }
  }

  nullableLsn(name: string): Lsn | null {
    return this.obj[name] === null ? null : this.lsn(name);
  }

  /** An object whose values are all numbers, or null. */
  nullableNumberRecord(name: string): Record<string, number> | null {
    const v = this.obj[name];
    if (v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v) || v === undefined) throw this.bad(name, 'an object of numbers or null');
    for (const x of Object.values(v as object)) if (typeof x !== 'number') throw this.bad(name, 'an object of numbers or null');
    return { ...(v as Record<string, number>) };
  }

  /** An object whose values are all strings. */
  stringRecord(name: string): Record<string, string> {
    const v = this.obj[name];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.bad(name, 'an object of strings');
    for (const x of Object.values(v as object)) if (typeof x !== 'string') throw this.bad(name, 'an object of strings');
    return { ...(v as Record<string, string>) };
  }

  object(name: string): JsonFields {
    const v = this.obj[name];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.bad(name, 'an object');
    return new JsonFields(v as Record<string, unknown>, this.source);
  }

  private bad(name: string, expected: string): PgkeepError {
    return corruptFile(this.source, `field "${name}" should be ${expected}, found ${JSON.stringify(this.obj[name]) ?? 'nothing'}`);
  }
}
