/**
 * Work over a list, at most `width` items at once: the few lines the stages wrote once each (checks of hosts, reads
 * of managed files, runs of a validator).
 */

/**
 * Calls `work` on every item, `width` lanes taking the next item as each finishes. `work` returns `'stop'` to end
 * the walk: the lanes take no new item (the ones in progress finish). Resolves with whether a lane stopped it.
 */
export async function inLanes<T>(items: readonly T[], width: number, work: (item: T, index: number) => Promise<void | 'stop'>): Promise<boolean> {
  let next = 0;
  let stopped = false;
  const lane = async (): Promise<void> => {
    while (!stopped && next < items.length) {
      const index = next++;
      if ((await work(items[index] as T, index)) === 'stop') stopped = true;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, lane));
  return stopped;
}
