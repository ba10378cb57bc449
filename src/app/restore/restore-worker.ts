/**
 * Worker thread entry for restore (see write-restored-file.ts and ../worker-pool.ts): each
 * worker opens its own store over the repository root and writes one file per job.
 */
import { workerData } from 'node:worker_threads';
import { PosixStore } from '../../storage/posix-store.js';
import { serveTasks } from '../worker-pool.js';
import { writeRestoredFile, writeRestoredPart, type RestoreFileJob, type RestoreWorkerData } from './write-restored-file.js';

const data = workerData as RestoreWorkerData;
const store = new PosixStore(data.root);

serveTasks<RestoreFileJob, number>((job) =>
  job.part === undefined ? writeRestoredFile(store, data.instance, data.blockSize, job.plan, job.dest) : writeRestoredPart(store, data.instance, job.plan, job.dest, job.part),
);
