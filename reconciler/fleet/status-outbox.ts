/**
 * A small outbox for what the agent tells the forge: posting never blocks or fails a reconcile. Each commit has
 * one slot, so a newer outcome for a commit replaces an unsent older one; a failed send is logged, counted and
 * retried with a doubling backoff; what was delivered is not sent again (a poll's `unchanged` repeats `success`).
 */
import type { Logger } from '../run-context.js';

/** One message for the forge, about one commit. */
export interface OutboxItem {
  sha: string;
  /** Equal fingerprints are the same message: delivered once. */
  fingerprint: string;
}

/** Options of the outbox. */
export interface OutboxOptions<T extends OutboxItem> {
  send: (item: T) => Promise<void>;
  log: Logger;
  /** Told after every attempt (the metrics count them). */
  onAttempt?: (ok: boolean) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Commits with unsent messages kept at most; past it the oldest is dropped. */
  maxPending?: number;
}

const DELIVERED_MEMORY = 64;

/** Sends items in order of arrival, one at a time, in the background. */
export class StatusOutbox<T extends OutboxItem> {
  private readonly pending = new Map<string, T>();
  private readonly delivered = new Map<string, string>();
  private sending?: Promise<void>;
  /** The message on its way: never the one the cap drops. */
  private inFlight?: T;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private closed = false;

  constructor(private readonly options: OutboxOptions<T>) {}

  /** Queues an item; it replaces an unsent item for the same commit. Returns at once. */
  push(item: T): void {
    if (this.closed) return;
    if (this.delivered.get(item.sha) === item.fingerprint && !this.pending.has(item.sha)) return;
    this.pending.delete(item.sha);
    this.pending.set(item.sha, item);
    const max = this.options.maxPending ?? 16;
    while (this.pending.size > max) {
      const oldest = [...this.pending.keys()].find((sha) => this.pending.get(sha) !== this.inFlight) as string;
      this.pending.delete(oldest);
      this.options.log.warn({ sha: oldest }, `forge outbox full: dropped the unsent status of ${oldest.slice(0, 12)}`);
    }
    if (!this.timer) this.kick();
  }

  /** How many commits have an unsent message. */
  get size(): number {
    return this.pending.size;
  }

  /** Tries once more to send what is left (bounded by `timeoutMs`), then stops retrying. */
  async close(timeoutMs = 5_000): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size > 0 && !this.sending) this.kick();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.sending ?? Promise.resolve(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    this.closed = true;
    clearTimeout(this.timer);
  }

  private kick(): void {
    if (this.sending) return;
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const next = this.pending.values().next();
      if (next.done) return;
      const item = next.value;
      this.inFlight = item;
      try {
        await this.options.send(item);
      } catch (error) {
        this.inFlight = undefined;
        this.options.onAttempt?.(false);
        this.failures += 1;
        const delay = Math.min((this.options.initialBackoffMs ?? 2_000) * 2 ** (this.failures - 1), this.options.maxBackoffMs ?? 300_000);
        this.options.log.warn(
          { sha: item.sha, err: describeError(error), retryInMs: delay, unsent: this.pending.size },
          `could not post to the forge for ${item.sha.slice(0, 12)}: ${describeError(error)}; retrying in ${Math.round(delay / 1000)} s`,
        );
        if (!this.closed) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.kick();
          }, delay);
          this.timer.unref();
        }
        return;
      }
      this.inFlight = undefined;
      this.options.onAttempt?.(true);
      this.failures = 0;
      // Only if no newer message for the commit arrived while this one was on its way.
      if (this.pending.get(item.sha) === item) this.pending.delete(item.sha);
      this.delivered.delete(item.sha);
      this.delivered.set(item.sha, item.fingerprint);
      if (this.delivered.size > DELIVERED_MEMORY) this.delivered.delete(this.delivered.keys().next().value as string);
    }
  }
}

/** An error in a few words: the forge's HTTP status when there is one, never the request (it holds the token). */
export function describeError(error: unknown): string {
  const status = (error as { status?: unknown }).status;
  const message = error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error);
  return typeof status === 'number' && status > 0 ? `http ${status}: ${message.slice(0, 200)}` : message.slice(0, 200);
}
