/**
 * The plain-text report of a retention run, shared by `delete` and `backup`: one line per backup
 * decided (kept and why, deleted, merged), one per archived timeline, and a summary line.
 */
import type { RetentionRequest, RetentionResult } from './apply-retention.js';

export function retentionLines(r: RetentionResult, req: Pick<RetentionRequest, 'deleteExpired' | 'mergeExpired' | 'deleteWal'>): string[] {
  const lines: string[] = [];
  const would = r.dryRun;
  if ((req.deleteExpired || req.mergeExpired) && !r.policySet) {
    lines.push('no retention policy is set (set-config --retention-redundancy / --retention-window): no backup expires');
  }
  const skipped = new Set(r.skipped.map((s) => s.slice(0, s.indexOf(':'))));
  for (const d of r.decisions) {
    let verb: string;
    switch (d.action) {
      case 'keep':
        verb = 'kept';
        break;
      case 'delete':
        if (!req.deleteExpired) verb = 'expired, kept without --delete-expired';
        else if (would) verb = 'would delete';
        else verb = skipped.has(d.id) ? 'expired, kept (a newer backup depends on it)' : 'deleted';
        break;
      case 'merge':
        verb = would ? 'would merge' : 'merged';
        break;
      case 'merged':
        verb = would ? 'would be merged' : r.mergedAway.includes(d.id) ? 'merged and removed' : 'merged, kept (a backup still depends on it)';
        break;
    }
    lines.push(`backup ${d.id} (${d.mode}, ${d.status}): ${verb}: ${d.reason}`);
  }
  if (r.wal) {
    for (const t of r.wal.timelines) {
      const hex = t.tli.toString(16).toUpperCase().padStart(8, '0');
      const files = r.wal.files.filter((f) => f.startsWith(hex));
      const what = files.length === 0 ? 'nothing to delete' : `${files.length} file(s) ${would ? 'to delete' : 'deleted'}, ${files[0]} .. ${files[files.length - 1]}`;
      lines.push(`WAL timeline ${t.tli}: ${what}; ${t.reason}`);
    }
  }
  const parts: string[] = [];
  if (req.deleteExpired || req.mergeExpired) {
    const deleted = would ? r.decisions.filter((d) => d.action === 'delete' && req.deleteExpired).length : r.deleted.length;
    const merged = would ? r.decisions.filter((d) => d.action === 'merge').length : r.merged.length;
    const kept = r.decisions.length - deleted - (would ? r.decisions.filter((d) => d.action === 'merged').length : r.mergedAway.length);
    parts.push(`${deleted} backup(s) ${would ? 'to delete' : 'deleted'}, ${merged} ${would ? 'to merge' : 'merged'}, ${kept} kept`);
  }
  if (r.wal) parts.push(`${r.wal.segments} WAL segment(s) (${r.wal.files.length} file(s), ${r.wal.bytes} bytes) ${would ? 'to delete' : 'deleted'}`);
  lines.push(`${would ? 'dry run, nothing changed: ' : ''}retention: ${parts.join('; ')}`);
  return lines;
}
