/**
 * Runs `work` over `items` with at most `concurrency` calls in flight. `worker` (0..concurrency-1)
 * names the worker running the call, so that each worker can own a reusable buffer. The first failure stops
 * new work from being taken, waits for the calls already running, and is rethrown: a backup never
 * leaves a worker writing after the command has reported failure.
 */
export async function forEachParallel<T>(items: readonly T[], concurrency: number, work: (item: T, index: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (slot: number): Promise<void> => {
    while (failure === undefined) {
      const index = next++;
      if (index >= items.length) return;
      try {
        await work(items[index] as T, index, slot);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const n = Math.max(1, Math.min(concurrency, items.length));
  await Promise.all(Array.from({ length: n }, (_, slot) => worker(slot)));
  if (failure) throw failure.error;
}
