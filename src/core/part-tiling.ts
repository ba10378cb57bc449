/**
 * Which parts of a file copied in parts make its entry (app/backup/copy-sources.ts). Pure.
 *
 * Parts are read from offsets fixed when the data directory was walked, each by its own copier,
 * while PostgreSQL runs: a relation may shrink (VACUUM truncates) or grow during the copy. The
 * parts describe one file only if they tile it: every part before the last kept one is full.
 * Past the first short part the file ended when that part was read; later parts must then be
 * empty (dropped). A later part with bytes means the file shrank and grew again between reads:
 * the parts do not describe one file, and it is copied again whole. WAL replay fixes the content
 * either way, as for any file copied while the server runs.
 */

/** How many leading parts to keep (at least 1), or 'recopy'. */
export function partsToKeep(sizes: readonly number[], partSize: number): number | 'recopy' {
  const firstShort = sizes.findIndex((n) => n < partSize);
  if (firstShort === -1) return sizes.length;
  if (sizes.slice(firstShort + 1).some((n) => n > 0)) return 'recopy';
  // An empty part after full ones adds nothing; a file now empty keeps its one empty part.
  return firstShort > 0 && sizes[firstShort] === 0 ? firstShort : firstShort + 1;
}
