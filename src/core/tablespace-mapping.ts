/**
 * -T OLD=NEW tablespace remapping, as pg_basebackup and pg_probackup spell it.
 * Pure: parsing, checking against the backup's tablespaces, and rewriting tablespace_map.
 */
import { PgkeepError } from '../errors.js';

export type TablespaceMapping = ReadonlyMap<string, string>;

export function parseTablespaceMappings(specs: readonly string[]): TablespaceMapping {
  const map = new Map<string, string>();
  for (const spec of specs) {
    // An '=' inside a path is written '\='.
    const m = /^((?:[^=\\]|\\.)+)=((?:[^=\\]|\\.)+)$/.exec(spec);
    if (!m) throw new PgkeepError('INVALID_ARGUMENT', `invalid tablespace mapping "${spec}"`, 'write -T OLDDIR=NEWDIR with absolute paths');
    const oldDir = unescape(m[1]!);
    const newDir = unescape(m[2]!);
    if (!oldDir.startsWith('/') || !newDir.startsWith('/')) throw new PgkeepError('INVALID_ARGUMENT', `tablespace mapping "${spec}" must use absolute paths`, 'write -T OLDDIR=NEWDIR with absolute paths');
    map.set(stripSlash(oldDir), stripSlash(newDir));
  }
  return map;
}

/** Every OLD of the mapping must be a tablespace of the backup, or the user mistyped it. */
export function assertMappingsUsed(mapping: TablespaceMapping, locations: readonly string[]): void {
  const known = new Set(locations.map(stripSlash));
  for (const oldDir of mapping.keys()) {
    if (!known.has(oldDir)) {
      throw new PgkeepError('INVALID_ARGUMENT', `the backup has no tablespace at ${oldDir}`, `its tablespaces are: ${locations.length ? locations.join(', ') : 'none'}`);
    }
  }
}

export function mapLocation(mapping: TablespaceMapping, location: string): string {
  return mapping.get(stripSlash(location)) ?? location;
}

/** tablespace_map lines are "<oid> <location>"; the location is rewritten by the mapping. */
export function remapTablespaceMap(content: string, mapping: TablespaceMapping): string {
  return content
    .split('\n')
    .map((line) => {
      const m = /^(\d+) (.*)$/.exec(line);
      return m ? `${m[1]} ${mapLocation(mapping, m[2]!)}` : line;
    })
    .join('\n');
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

function stripSlash(s: string): string {
  return s.length > 1 ? s.replace(/\/+$/, '') : s;
}
