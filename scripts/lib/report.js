// The benchmark's tables (Markdown) and their place in docs/benchmarks.md, between markers so
// that a rerun replaces its own section and leaves the rest of the page alone.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const mb = (bytes) => bytes / 1e6;

/**
 * rows: { what, pg, seconds, rssMb, dataBytes, storedBytes?, peer? } or { what, pg, skip }.
 * peer is another row; the ratio is this row's time over the peer's (below 1: faster).
 */
export function resultsTable(rows) {
  const lines = ['| operation | PG | seconds | MB/s | peak RSS MB | stored MB | time vs peer |', '|---|---:|---:|---:|---:|---:|---|'];
  for (const r of rows) {
    if (r.skip) {
      lines.push(`| ${r.what} | ${r.pg} | - | - | - | - | skipped: ${r.skip} |`);
      continue;
    }
    const peer = r.peer && !r.peer.skip ? r.peer : undefined;
    const ratio = peer ? `${(r.seconds / peer.seconds).toFixed(2)}× ${peer.what}${peer.pg !== r.pg ? ` (PG ${peer.pg})` : ''}` : '';
    const stored = r.storedBytes === undefined ? '' : mb(r.storedBytes).toFixed(0);
    lines.push(`| ${r.what} | ${r.pg} | ${r.seconds.toFixed(2)} | ${(mb(r.dataBytes) / Math.max(r.seconds, 0.01)).toFixed(0)} | ${r.rssMb.toFixed(1)} | ${stored} | ${ratio} |`);
  }
  return lines.join('\n');
}

/** A "Targets" table: { target, measured, met: boolean | undefined, note }. */
export function targetsTable(targets) {
  const lines = ['| target | measured | result |', '|---|---|---|'];
  for (const t of targets) {
    const result = t.met === undefined ? `not measured${t.note ? `: ${t.note}` : ''}` : t.met ? `met${t.note ? ` (${t.note})` : ''}` : `missed${t.note ? `: ${t.note}` : ''}`;
    lines.push(`| ${t.target} | ${t.measured} | ${result} |`);
  }
  return lines.join('\n');
}

/**
 * A time target "at most `limit` × the peer's time": met, or missed by how much.
 * ratio = our time / peer time.
 */
export function timeTarget(target, ratio, limit, peerWhat) {
  if (ratio === undefined) return { target, measured: '-', met: undefined, note: `${peerWhat} did not run` };
  const measured = `${ratio.toFixed(2)}× the time of ${peerWhat}`;
  if (ratio <= limit) return { target, measured, met: true, note: `${((1 - ratio / limit) * 100).toFixed(0)}% under` };
  return { target, measured, met: false, note: `by ${((ratio / limit - 1) * 100).toFixed(0)}% (${(ratio / limit).toFixed(2)}× faster needed)` };
}

/**
 * Replaces the text between `<!-- bench:KEY:begin -->` and `<!-- bench:KEY:end -->` in the file,
 * or inserts the marked section before the first "## " heading that follows the title (after the
 * other generated sections when there are some).
 */
export function writeSection(file, key, body) {
  const begin = `<!-- bench:${key}:begin -->`;
  const end = `<!-- bench:${key}:end -->`;
  const section = `${begin}\n${body.trim()}\n${end}`;
  const page = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const a = page.indexOf(begin);
  const b = page.indexOf(end);
  let next;
  if (a >= 0 && b > a) {
    next = `${page.slice(0, a)}${section}${page.slice(b + end.length)}`;
  } else {
    const lastGenerated = page.lastIndexOf(':end -->');
    const from = lastGenerated >= 0 ? page.indexOf('\n', lastGenerated) + 1 : 0;
    const heading = page.indexOf('\n## ', from);
    next = heading < 0 ? `${page.trimEnd()}\n\n${section}\n` : `${page.slice(0, heading + 1)}${section}\n\n${page.slice(heading + 1)}`;
  }
  writeFileSync(file, next);
}
