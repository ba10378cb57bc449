/**
 * Which lock each command takes on an instance, and waiting for it (`--wait[=SECONDS]`).
 *
 * restore, validate and export read backups: shared, any number at once. backup only adds a new
 * backup: it excludes other writers but not readers. merge, delete and del-instance change or
 * remove existing backups: they exclude everyone. The protocol is in repository/instance-lock.ts;
 * docs/locking.md has the table.
 */
import { PgkeepError } from '../errors.js';
import { tryInstanceLock, type InstanceLock, type LockHolder, type LockKind } from '../repository/instance-lock.js';
import type { RepoContext } from './repo-context.js';

export type LockingCommand = 'backup' | 'merge' | 'delete' | 'del-instance' | 'restore' | 'validate' | 'export' | 'set-backup';

export const LOCK_KIND: Record<LockingCommand, LockKind> = {
  backup: 'append',
  merge: 'exclusive',
  delete: 'exclusive',
  'del-instance': 'exclusive',
  restore: 'shared',
  validate: 'shared',
  export: 'shared',
  // Pins and notes rewrite one backup's record: harmless beside readers and a running backup,
  // but a merge or delete could remove the very backup being pinned.
  'set-backup': 'shared',
};

/** What locking needs of a repository context (tests pass just these). */
export type LockingContext = Pick<RepoContext, 'root' | 'reporter'>;

/** Between attempts while waiting: jittered, so that two waiters that withdrew from each other part. */
const POLL_MIN_MS = 250;
const POLL_MAX_MS = 500;

/**
 * Takes the lock `command` needs on `instance`. `waitSeconds` undefined (or 0): one attempt, and
 * LOCKED naming the holder. A number: attempts until it is free, for at most that many seconds
 * (Infinity: without limit), then LOCKED saying how long it waited.
 */
export async function lockInstance(ctx: LockingContext, instance: string, command: LockingCommand, waitSeconds?: number): Promise<InstanceLock> {
  const started = Date.now();
  const limitMs = (waitSeconds ?? 0) * 1000;
  let announced: string | undefined;
  for (;;) {
    const attempt = await tryInstanceLock(ctx.root, instance, LOCK_KIND[command], command, (o) =>
      ctx.reporter.warn(`breaking the lock of instance ${instance} left by pid ${o.pid} (${o.command}), which is gone`),
    );
    if (attempt.lock) return attempt.lock;
    const waited = Date.now() - started;
    if (waited >= limitMs) throw lockedError(instance, attempt.holder, limitMs > 0 ? waited : undefined);
    const who = holderName(attempt.holder);
    if (announced !== who) {
      const limit = Number.isFinite(limitMs) ? ` (up to ${waitSeconds} s)` : '';
      ctx.reporter.info(`waiting for ${who} to release instance ${instance}${limit}`);
      announced = who;
    }
    const pause = POLL_MIN_MS + Math.random() * (POLL_MAX_MS - POLL_MIN_MS);
    await new Promise((r) => setTimeout(r, Math.min(pause, limitMs - waited)));
  }
}

/** Runs `fn` holding the lock `command` needs on `instance`, and releases it however `fn` ends. */
export async function withInstanceLock<T>(ctx: LockingContext, instance: string, command: LockingCommand, waitSeconds: number | undefined, fn: () => Promise<T>): Promise<T> {
  const lock = await lockInstance(ctx, instance, command, waitSeconds);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

function holderName(h: LockHolder): string {
  return h.owner ? `"${h.owner.command}" (pid ${h.owner.pid} on ${h.owner.host})` : `the lock file ${h.path}`;
}

function lockedError(instance: string, h: LockHolder, waitedMs: number | undefined): PgkeepError {
  const busy = waitedMs === undefined ? `instance ${instance} is busy` : `instance ${instance} is still busy after waiting ${Math.round(waitedMs / 1000)} s`;
  if (!h.owner) {
    return new PgkeepError('LOCKED', `${busy}: its lock file ${h.path} cannot be read`, `remove ${h.path} if no pgkeep command is running on this instance`);
  }
  const o = h.owner;
  const message = `${busy}: "${o.command}" (pid ${o.pid} on ${o.host}) has held it since ${o.startedAt}`;
  if (h.foreign) {
    return new PgkeepError('LOCKED', message, `wait for it, or add --wait; if no pgkeep runs on ${o.host} any more, remove ${h.path}`);
  }
  const hint = waitedMs === undefined ? 'wait for it to finish, or add --wait to wait for it' : 'wait longer (--wait=SECONDS, or --wait without a limit), or run the command again once it has finished';
  return new PgkeepError('LOCKED', message, hint);
}
