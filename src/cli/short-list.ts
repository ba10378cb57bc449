/**
 * Long lists in one cell of a `show` table (the backups an archived range serves, the gaps of a
 * timeline) or on one line of `merge`'s report (the backups merged, deleted, kept). A repository
 * with hundreds of backups would otherwise put hundreds of IDs on one line, thousands of
 * characters wide. The newest and oldest stay in view, and the count says how many there are;
 * `show --format json` lists them all. Pure.
 */

/** Items shown in full up to this many; past it, the first and last halves of it and a count. */
export const MAX_LISTED = 8;

/** `items` joined by `sep`, or the first and last MAX_LISTED / 2 around "… (N in all)". */
export function shortList(items: readonly string[], sep: string, noun: string): string {
  if (items.length <= MAX_LISTED) return items.join(sep);
  const half = MAX_LISTED / 2;
  return [...items.slice(0, half), `… (${items.length} ${noun} in all)`, ...items.slice(-half)].join(sep);
}
