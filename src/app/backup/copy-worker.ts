/**
 * Worker thread entry for backup copies (see copy-sources.ts and ../worker-pool.ts): each worker
 * opens its own store over the repository root, owns one read buffer, and runs copy jobs one at
 * a time, returning the manifest entry and the page counters of each.
 */
import { workerData } from 'node:worker_threads';
import { PosixStore } from '../../storage/posix-store.js';
import { serveTasks } from '../worker-pool.js';
import { runCopyJob, runPartJob, type CopyJob, type PartJob, type CopyJobResult, type CopyWorkerData } from './copy-entry.js';
import { READ_BUFFER_BYTES, type PageCheckCounters } from './read-data-file.js';

const data = workerData as CopyWorkerData;
const target = { ...data.settings, store: new PosixStore(data.root, data.defersSync) };
const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

serveTasks<CopyJob | PartJob, CopyJobResult>(async (job) => {
  const counters: PageCheckCounters = { pagesRead: 0, pagesReread: 0, pagesTornAccepted: 0 };
  if (job.how === 'part' || job.how === 'delta-part') return { entry: null, part: await runPartJob(job, target, buffer, counters), counters };
  const entry = await runCopyJob(job, target, buffer, counters);
  return { entry, counters };
});
