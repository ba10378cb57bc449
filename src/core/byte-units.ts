/**
 * Byte counts for people: decimal units (1 MB = 10^6 bytes), as the benchmark and the progress
 * figures use, so that every size pgkeep prints reads the same way.
 */

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

function unitFor(n: number): number {
  let u = 0;
  while (n >= 1000 ** (u + 1) && u < UNITS.length - 1) u++;
  return u;
}

function scaled(n: number, u: number): string {
  const v = n / 1000 ** u;
  return u === 0 ? String(Math.round(v)) : v < 100 ? v.toFixed(1) : String(Math.round(v));
}

/** 1234567 → "1.2 MB". */
export function formatBytes(n: number): string {
  const u = unitFor(n);
  return `${scaled(n, u)} ${UNITS[u]!}`;
}

/** done of total in the total's unit: "1.2/3.4 GB". */
export function formatBytesOf(done: number, total: number): string {
  const u = unitFor(Math.max(done, total));
  return `${scaled(done, u)}/${scaled(total, u)} ${UNITS[u]!}`;
}
