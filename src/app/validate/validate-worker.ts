/**
 * Worker thread entry for validate (see check-stored-file.ts and ../worker-pool.ts): each worker
 * opens its own store over the repository root and checks one stored file, or one part of a
 * file stored in parts, per job, returning the problem found or undefined.
 */
import { workerData } from 'node:worker_threads';
import { PosixStore } from '../../storage/posix-store.js';
import { serveTasks } from '../worker-pool.js';
import { checkFileJob, type CheckFileJob, type ValidateWorkerData } from './check-stored-file.js';

const store = new PosixStore((workerData as ValidateWorkerData).root);

serveTasks<CheckFileJob, string | null>(async (job) => (await checkFileJob(store, job)) ?? null);
