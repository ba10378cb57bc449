/**
 * A small pool of worker threads that run one kind of task, so that `-j N` uses N cores for the
 * CPU-bound part of a file's copy (page checks, hashing, framing) instead of one event loop.
 *
 * Design note. A pool is started for one command phase (`WorkerPool.start`), runs tasks
 * (`run`, one message each way, FIFO), and is ended with `close`. A task and its result must be
 * structured-cloneable (plain objects, strings, numbers, bigints). Each worker runs the entry
 * module named at start, which calls `serveTasks` with its handler; it keeps its own buffers and
 * storage handles between tasks. A PgkeepError thrown in a worker crosses back as a PgkeepError
 * with the same code, message and hint (and the errno code of its cause, so isMissingObjectError
 * still works). A worker that dies outright fails every task of the pool: the caller's first
 * failure stops the phase anyway. Idle workers are unref'd, so a pool left open after a failure
 * does not keep the process from exiting.
 *
 * Workers need the built JavaScript: `workerEntry` returns undefined when the entry file is not
 * there (code run from TypeScript sources, as unit tests do), and callers then run in-process.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parentPort, Worker } from 'node:worker_threads';
import { errnoCode, errorMessage, isPgkeepError, PgkeepError, type ErrorCode } from '../errors.js';
import { debugLine } from '../debug.js';
import { initHashing } from '../repository/hash.js';

interface SerializedError {
  message: string;
  code?: ErrorCode;
  hint?: string;
  causeCode?: string;
  stack?: string;
}

type Reply<R> = { id: number; ok: true; result: R } | { id: number; ok: false; error: SerializedError };

interface Job<T, R> {
  id: number;
  task: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/** The URL of a compiled worker entry beside `base` (import.meta.url), or undefined when running from sources. */
export function workerEntry(base: string, name: string): URL | undefined {
  if (!base.endsWith('.js')) return undefined;
  const url = new URL(name, base);
  return existsSync(fileURLToPath(url)) ? url : undefined;
}

export class WorkerPool<T, R> {
  private readonly idle: Worker[] = [];
  private readonly queue: Job<T, R>[] = [];
  private readonly running = new Map<Worker, Job<T, R>>();
  private nextId = 0;
  private failure: unknown;
  private closed = false;

  private constructor(private readonly workers: Worker[]) {
    for (const w of workers) {
      w.on('message', (reply: Reply<R>) => this.settle(w, reply));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new PgkeepError('INTERNAL', `a worker thread exited unexpectedly (status ${code})`));
      });
      // An idle worker does not keep the process alive: a caller that fails before `close` cannot hang it.
      w.unref();
      this.idle.push(w);
    }
  }

  /** `size` workers running `entry`; `workerData` reaches each as worker_threads' workerData. */
  static start<T, R>(entry: URL, size: number, workerData: unknown): WorkerPool<T, R> {
    const n = Math.max(1, size);
    // Says when threads are used: tests check it.
    debugLine(`${n} worker thread(s) running ${basename(fileURLToPath(entry))}`);
    const workers = Array.from({ length: n }, () => new Worker(entry, { workerData }));
    return new WorkerPool<T, R>(workers);
  }

  /** Runs `task` on the next free worker. */
  run(task: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure);
      if (this.closed) return reject(new PgkeepError('INTERNAL', 'task given to a closed worker pool'));
      this.queue.push({ id: this.nextId++, task, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops every worker. Tasks still queued or running are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(new PgkeepError('INTERNAL', 'the worker pool was closed while a task was running'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop() as Worker;
      const job = this.queue.shift() as Job<T, R>;
      this.running.set(w, job);
      w.ref();
      w.postMessage({ id: job.id, task: job.task });
    }
  }

  private settle(w: Worker, reply: Reply<R>): void {
    const job = this.running.get(w);
    if (!job || job.id !== reply.id) return;
    this.running.delete(w);
    w.unref();
    this.idle.push(w);
    if (reply.ok) job.resolve(reply.result);
    else job.reject(deserializeError(reply.error));
    this.dispatch();
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    this.rejectAll(this.failure);
  }

  private rejectAll(e: unknown): void {
    for (const job of this.running.values()) job.reject(e);
    this.running.clear();
    for (const job of this.queue.splice(0)) job.reject(e);
  }
}

/** In a worker entry: answer each task message with `handler`'s result or error. */
export function serveTasks<T, R>(handler: (task: T) => Promise<R>): void {
  const port = parentPort;
  if (!port) throw new PgkeepError('INTERNAL', 'serveTasks called outside a worker thread');
  // A worker thread is a way into pgkeep of its own: it hashes only once the module is ready.
  const ready = initHashing();
  port.on('message', ({ id, task }: { id: number; task: T }) => {
    ready.then(() => handler(task)).then(
      (result) => port.postMessage({ id, ok: true, result } satisfies Reply<R>),
      (e: unknown) => port.postMessage({ id, ok: false, error: serializeError(e) } satisfies Reply<R>),
    );
  });
}

function serializeError(e: unknown): SerializedError {
  const out: SerializedError = { message: errorMessage(e) };
  if (e instanceof Error && e.stack) out.stack = e.stack;
  if (isPgkeepError(e)) {
    out.code = e.code;
    if (e.hint !== undefined) out.hint = e.hint;
    const causeCode = errnoCode(e.cause);
    if (causeCode !== undefined) out.causeCode = causeCode;
  }
  return out;
}

function deserializeError(s: SerializedError): Error {
  if (s.code === undefined) {
    const e = new Error(s.message);
    if (s.stack) e.stack = s.stack;
    return e;
  }
  const cause = s.causeCode !== undefined ? Object.assign(new Error(s.causeCode), { code: s.causeCode }) : undefined;
  return new PgkeepError(s.code, s.message, s.hint, cause ? { cause } : undefined);
}
