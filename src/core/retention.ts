/**
 * Retention: which backups a policy keeps, deletes or merges, and which archived WAL the backups
 * that stay still need. Pure: the caller reads the catalog and the archive, prints the plan, and
 * executes it. docs/retention.md states the rules; in short (pg_probackup's semantics):
 *
 *   - redundancy N keeps the N newest valid (OK, DONE) FULL backups and every backup taken
 *     after the N-th of them;
 *   - window D keeps what recovery to any moment of the last D days needs: the newest valid
 *     backup whose recovery point is at or before now - D days, and every backup after it;
 *   - a backup is kept when either policy keeps it, when it is pinned (expire time in the
 *     future), or when it is in progress (RUNNING, MERGING); neither policy set keeps everything;
 *   - a kept valid or in-progress backup keeps every ancestor it restores through; an ERROR,
 *     CORRUPT, ORPHAN or DELETING backup keeps none, and goes when one of its ancestors goes;
 *   - with merge, a kept valid incremental whose whole chain below it has expired absorbs that
 *     chain (merge), instead of keeping it.
 *
 * WAL: continuous WAL (point-in-time recovery) from every kept valid backup, or with wal-depth N
 * from the N newest per timeline only (the older ones keep their own start-to-stop WAL unless
 * they carry it, --stream); the WAL of timelines that branch off after such a backup; nothing of
 * a timeline no kept backup reaches unless it only precedes theirs. No kept backup: no WAL goes.
 */
import type { BackupRecord, BackupStatus } from './backup-types.js';
import { formatLsn, parseWalFileName, segmentNumber, type Lsn } from './lsn.js';
import type { TimelinePath } from './timeline-history.js';

/** Numbers as set-config stores them; 0 means unset. */
export interface RetentionPolicy {
  redundancy: number;
  windowDays: number;
  walDepth: number;
}

/** What the planner reads of a backup. */
export type RetentionBackup = Pick<
  BackupRecord,
  'id' | 'mode' | 'status' | 'parentId' | 'timeline' | 'startLsn' | 'stopLsn' | 'startTime' | 'endTime' | 'recoveryTime' | 'stream' | 'expireTime'
>;

/**
 * keep: stays as it is. delete: removed. merge: stays, and absorbs `related` (its expired
 * ancestors, newest first) by a merge. merged: folded into `related` by their merges, then removed.
 */
export type RetentionAction = 'keep' | 'delete' | 'merge' | 'merged';

export interface BackupDecision {
  id: string;
  action: RetentionAction;
  reason: string;
  related: string[];
}

export interface RetentionPlan {
  /** False when neither redundancy nor window is set: nothing expires. */
  policySet: boolean;
  /** One per backup, newest first. */
  decisions: BackupDecision[];
}

const VALID: ReadonlySet<BackupStatus> = new Set(['OK', 'DONE']);
const IN_PROGRESS: ReadonlySet<BackupStatus> = new Set(['RUNNING', 'MERGING']);
const DAY_MS = 24 * 60 * 60 * 1000;

export function isValidBackup(b: Pick<RetentionBackup, 'status'>): boolean {
  return VALID.has(b.status);
}

/** Valid or in progress: such a backup needs its ancestors and its WAL. */
function holdsChain(b: RetentionBackup): boolean {
  return VALID.has(b.status) || IN_PROGRESS.has(b.status);
}

/** The moment a backup recovers to: its recovery time, else its end, else its start. */
export function recoveryPointOf(b: Pick<RetentionBackup, 'recoveryTime' | 'endTime' | 'startTime'>): Date {
  return b.recoveryTime ?? b.endTime ?? b.startTime;
}

export function isPinned(b: Pick<RetentionBackup, 'expireTime'>, now: Date): boolean {
  return b.expireTime !== undefined && b.expireTime !== null && b.expireTime.getTime() > now.getTime();
}

/** Newest first: start time, then id (ids of one instance sort by start second). */
export function newestFirst(a: RetentionBackup, b: RetentionBackup): number {
  return b.startTime.getTime() - a.startTime.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export function planRetention(backups: readonly RetentionBackup[], policy: RetentionPolicy, now: Date, opts: { mergeExpired: boolean }): RetentionPlan {
  const sorted = [...backups].sort(newestFirst);
  const byId = new Map(sorted.map((b) => [b.id, b]));
  const policySet = policy.redundancy > 0 || policy.windowDays > 0;

  // 1. What keeps each backup by itself: progress, a pin, a policy.
  const own = new Map<string, string[]>();
  const addOwn = (id: string, reason: string) => {
    const list = own.get(id);
    if (list) list.push(reason);
    else own.set(id, [reason]);
  };
  for (const b of sorted) {
    if (IN_PROGRESS.has(b.status)) addOwn(b.id, `in progress (${b.status})`);
    if (isPinned(b, now)) addOwn(b.id, `pinned until ${b.expireTime!.toISOString()}`);
    if (!policySet) addOwn(b.id, 'no retention policy is set');
  }
  const expiry = new Map<string, string[]>();
  /** The FULL backup `b`'s chain starts from, or undefined when the chain is broken. */
  function rootOf(b: RetentionBackup): RetentionBackup | undefined {
    if (b.mode === 'FULL') return b;
    const chain = ancestorsOf(b);
    return chain?.[chain.length - 1];
  }
  if (policy.redundancy > 0) {
    // Chain by chain: a backup is kept when the FULL backup its chain starts from is one of
    // the N newest valid ones (pg_probackup's rule since 2.2).
    const n = policy.redundancy;
    const fulls = sorted.filter((b) => b.mode === 'FULL' && isValidBackup(b)).slice(0, n);
    const names = fulls.map((f) => f.id).join(', ');
    for (const b of sorted) {
      const root = rootOf(b);
      const k = root === undefined ? -1 : fulls.indexOf(root);
      if (k < 0) {
        const which = fulls.length === 0 ? 'there is no valid FULL backup' : `not in the chain of ${fulls.length === 1 ? '' : 'one of '}${names}, the newest valid FULL backup${fulls.length === 1 ? '' : 's'}`;
        expiry.set(b.id, [...(expiry.get(b.id) ?? []), `redundancy ${n}: ${which}`]);
      } else if (root === b) {
        addOwn(b.id, `valid FULL backup ${k + 1} of redundancy ${n}`);
      } else {
        addOwn(b.id, `in the chain of ${root!.id}, valid FULL backup ${k + 1} of redundancy ${n}`);
      }
    }
  }
  if (policy.windowDays > 0) {
    const d = policy.windowDays;
    const start = new Date(now.getTime() - d * DAY_MS);
    const anchor = sorted.find((b) => isValidBackup(b) && recoveryPointOf(b).getTime() <= start.getTime());
    const anchorIndex = anchor ? sorted.indexOf(anchor) : -1;
    sorted.forEach((b, i) => {
      if (b === anchor) addOwn(b.id, `the newest backup that recovers to ${start.toISOString()}, the start of the ${d}-day window`);
      else if (i < anchorIndex || recoveryPointOf(b).getTime() > start.getTime()) addOwn(b.id, `within the ${d}-day window`);
      else expiry.set(b.id, [...(expiry.get(b.id) ?? []), `older than the ${d}-day window`]);
    });
  }

  // 2. Merges: a kept valid incremental whose whole chain below it is expired absorbs it.
  function ancestorsOf(b: RetentionBackup): RetentionBackup[] | undefined {
    const chain: RetentionBackup[] = [];
    const seen = new Set([b.id]);
    let cur = b;
    while (cur.mode !== 'FULL') {
      const parent = cur.parentId === null ? undefined : byId.get(cur.parentId);
      if (!parent || seen.has(parent.id)) return undefined; // broken chain: nothing to merge
      chain.push(parent);
      seen.add(parent.id);
      cur = parent;
    }
    return chain;
  }
  const mergeFrom = new Map<string, string[]>();
  if (opts.mergeExpired && policySet) {
    for (const b of [...sorted].reverse()) {
      if (!own.has(b.id) || !isValidBackup(b) || b.mode === 'FULL') continue;
      const chain = ancestorsOf(b);
      if (!chain || chain.length === 0) continue;
      // A pinned or in-progress ancestor must stay: the merge would remove it with the chain.
      if (chain.some((a) => own.has(a.id) || !isValidBackup(a))) continue;
      mergeFrom.set(b.id, chain.map((a) => a.id));
    }
  }

  // 3. Ancestors a kept backup restores through (unless its merge absorbs them).
  const neededBy = new Map<string, string[]>();
  for (const b of sorted) {
    if (!own.has(b.id) || !holdsChain(b) || mergeFrom.has(b.id)) continue;
    let cur = b;
    const seen = new Set([b.id]);
    while (cur.parentId !== null) {
      const parent = byId.get(cur.parentId);
      if (!parent || seen.has(parent.id)) break;
      seen.add(parent.id);
      neededBy.set(parent.id, [...(neededBy.get(parent.id) ?? []), b.id]);
      // A merge target becomes FULL: what lies below it is its merge's business.
      if (mergeFrom.has(parent.id)) break;
      cur = parent;
    }
  }
  const mergedInto = new Map<string, string[]>();
  for (const [target, from] of mergeFrom) {
    for (const id of from) if (!neededBy.has(id)) mergedInto.set(id, [...(mergedInto.get(id) ?? []), target]);
  }

  // 4. Decisions. Whatever is removed takes its invalid descendants with it: they keep nothing,
  // and a backup must not outlive its parent.
  const stays = (id: string) => (own.has(id) && (holdsChain(byId.get(id)!) || !removedBelow(id))) || neededBy.has(id) || mergeFrom.has(id);
  const removedCache = new Map<string, string | undefined>();
  function removedBelow(id: string): string | undefined {
    if (removedCache.has(id)) return removedCache.get(id);
    removedCache.set(id, undefined); // a cycle ends here
    const b = byId.get(id)!;
    let result: string | undefined;
    const parent = b.parentId === null ? undefined : byId.get(b.parentId);
    if (parent) result = !stays(parent.id) || mergedInto.has(parent.id) ? parent.id : removedBelow(parent.id);
    removedCache.set(id, result);
    return result;
  }

  const decisions: BackupDecision[] = sorted.map((b) => {
    const ownReasons = own.get(b.id);
    if (mergeFrom.has(b.id)) {
      const from = mergeFrom.get(b.id)!;
      return { id: b.id, action: 'merge', reason: `${ownReasons!.join('; ')}; absorbs its expired chain ${from.join(', ')}`, related: from };
    }
    const needers = neededBy.get(b.id);
    if (needers) {
      const why = ownReasons ?? [`needed by ${needers.join(', ')}`];
      return { id: b.id, action: 'keep', reason: why.join('; '), related: needers };
    }
    if (mergedInto.has(b.id)) {
      const into = mergedInto.get(b.id)!;
      return { id: b.id, action: 'merged', reason: `expired (${expiredWhy(b)}); merged into ${into.join(', ')}`, related: into };
    }
    if (ownReasons) {
      const gone = holdsChain(b) ? undefined : removedBelow(b.id);
      if (gone !== undefined) return { id: b.id, action: 'delete', reason: `its ancestor ${gone} is removed, and a ${b.status} backup keeps no ancestor`, related: [gone] };
      return { id: b.id, action: 'keep', reason: ownReasons.join('; '), related: [] };
    }
    return { id: b.id, action: 'delete', reason: `expired (${expiredWhy(b)})`, related: [] };
  });
  return { policySet, decisions };

  function expiredWhy(b: RetentionBackup): string {
    const why = [...(expiry.get(b.id) ?? [])];
    if (b.expireTime) why.push(`pinned until ${b.expireTime.toISOString()}, which has passed`);
    if (!isValidBackup(b)) why.push(`${b.status}`);
    return why.join('; ');
  }
}

/** A stretch of WAL whose segments stay; `to` null: to the end of the timeline. */
export interface WalKeepRange {
  from: Lsn;
  to: Lsn | null;
}

/**
 * What happens to one archived timeline. trim: every segment (and its .partial and .backup
 * files) outside `keep` goes. leave: nothing of it goes. History files always stay.
 */
export interface TimelineWalPlan {
  tli: number;
  action: 'trim' | 'leave';
  keep: WalKeepRange[];
  reason: string;
}

/**
 * The WAL the backups that stay need, per archived timeline. `kept`: the backups that stay (any
 * status; only valid and in-progress ones need WAL). `histories`: the parsed history files.
 */
export function planWalRetention(kept: readonly RetentionBackup[], walDepth: number, timelines: Iterable<number>, histories: ReadonlyMap<number, TimelinePath>): TimelineWalPlan[] {
  const tlis = [...new Set(timelines)].sort((a, b) => a - b);
  const users = kept.filter(holdsChain).sort(newestFirst);
  if (users.length === 0) return tlis.map((tli) => ({ tli, action: 'leave', keep: [], reason: 'no valid backup is kept: WAL is left alone' }));

  const needs = new Map<number, { keep: WalKeepRange[]; why: string[] }>();
  const need = (tli: number, range: WalKeepRange, why: string) => {
    let n = needs.get(tli);
    if (!n) needs.set(tli, (n = { keep: [], why: [] }));
    n.keep.push(range);
    n.why.push(why);
  };
  const perTimeline = new Map<number, RetentionBackup[]>();
  for (const b of users) perTimeline.set(b.timeline, [...(perTimeline.get(b.timeline) ?? []), b]);
  for (const [tli, list] of perTimeline) {
    list.forEach((b, i) => {
      const pitr = walDepth === 0 || i < walDepth || b.stopLsn === null;
      if (pitr) {
        need(tli, { from: b.startLsn, to: null }, `point-in-time recovery from ${b.id}`);
        // Timelines that branch off after the backup: recovery from it may follow them.
        for (const path of histories.values()) {
          const at = path.spans.findIndex((s) => s.tli === tli);
          const span = path.spans[at];
          if (at < 0 || !span || (span.end !== undefined && span.end < (b.stopLsn ?? b.startLsn))) continue;
          for (const later of path.spans.slice(at + 1)) need(later.tli, { from: later.begin, to: null }, `point-in-time recovery from ${b.id} along timeline ${path.tli}`);
        }
      } else if (!b.stream) {
        need(tli, { from: b.startLsn, to: b.stopLsn }, `the WAL of ${b.id} (beyond wal-depth ${walDepth})`);
      }
    });
  }
  // Timelines before the kept backups' own (from their history files): superseded history.
  const precede = new Set<number>();
  for (const b of users) for (const s of histories.get(b.timeline)?.spans ?? []) if (s.tli !== b.timeline) precede.add(s.tli);

  return tlis.map((tli): TimelineWalPlan => {
    const n = needs.get(tli);
    if (n) {
      const keep = mergeRanges(n.keep);
      const from = keep.map((r) => (r.to === null ? `from ${formatLsn(r.from)} on` : `${formatLsn(r.from)}-${formatLsn(r.to)}`)).join(', ');
      return { tli, action: 'trim', keep, reason: `keeps ${from}: ${[...new Set(n.why)].join('; ')}` };
    }
    if (precede.has(tli)) return { tli, action: 'trim', keep: [], reason: `timeline ${tli} only precedes the timelines of the kept backups` };
    return { tli, action: 'leave', keep: [], reason: `no kept backup reaches timeline ${tli}: left alone` };
  });
}

function mergeRanges(ranges: readonly WalKeepRange[]): WalKeepRange[] {
  const sorted = [...ranges].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const out: WalKeepRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && (last.to === null || r.from <= last.to)) {
      if (last.to !== null) last.to = r.to === null ? null : r.to > last.to ? r.to : last.to;
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

const REMOVABLE = /^([0-9A-F]{24})(\.partial|\.[0-9A-F]{8}\.backup)?$/;

/**
 * The archived names (segments, .partial and .backup files) the plans remove, in name order.
 * A file goes when its timeline is trimmed and its segment lies in no kept range; history files
 * and names of timelines the plans do not mention always stay.
 */
export function walFilesToRemove(names: Iterable<string>, plans: readonly TimelineWalPlan[], segSize: number): string[] {
  const byTli = new Map(plans.map((p) => [p.tli, p]));
  const out: string[] = [];
  for (const name of names) {
    const m = REMOVABLE.exec(name);
    if (!m) continue;
    const { tli, segNo } = parseWalFileName(m[1]!, segSize);
    const plan = byTli.get(tli);
    if (!plan || plan.action !== 'trim') continue;
    const kept = plan.keep.some((r) => segNo >= segmentNumber(r.from, segSize) && (r.to === null || segNo <= segmentNumber(r.to, segSize)));
    if (!kept) out.push(name);
  }
  return out.sort();
}
