/**
 * The webhook deliveries seen lately, by forge and delivery id (`X-GitHub-Delivery`, `X-Gitea-Delivery`,
 * `X-Forgejo-Delivery`): a redelivered or replayed push is answered but triggers nothing. Bounded: the oldest ids
 * are forgotten first, so a flood of fresh ids costs a fixed amount of memory.
 */

/** How many delivery ids are remembered by default. */
export const DEFAULT_DELIVERY_MEMORY = 1024;

/** Remembers recent delivery ids, first in, first out. */
export class DeliveryLog {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity = DEFAULT_DELIVERY_MEMORY) {}

  /** Records a delivery; true when it was seen before (a duplicate). */
  record(forge: string, delivery: string): boolean {
    const key = `${forge}:${delivery}`;
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    if (this.seen.size > this.capacity) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return false;
  }

  /** How many ids are remembered. */
  get size(): number {
    return this.seen.size;
  }
}
