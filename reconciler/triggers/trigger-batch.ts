/**
 * The triggers waiting for the next run, merged into one batch: their reasons (the first few, then a count), whether
 * any of them forces the run or wants it now, and the commits that webhooks announced. A run that resolves one of
 * those commits absorbs the triggers that did nothing but announce it, so a burst for one commit never queues a
 * second run behind the one already bringing that commit.
 */
import { MAX_REASONS, type TriggerOptions } from './run-request.js';

/** How many distinct announced commits one batch tells apart; past it, a hint counts as a plain trigger. */
export const MAX_BATCH_HINTS = 32;

interface Entry {
  /** Arrival order, so plain and hinted reasons interleave as they came. */
  seq: number;
  reason: string;
  /** The announced commit, for a trigger that only announced one. */
  hint?: string;
}

/** The announced commit of a trigger that may be absorbed: a plain webhook hint (not forced, not a poll). */
export function absorbableHint(options: TriggerOptions): string | undefined {
  if (!options.newerRevisionHint || options.force === true || options.automatic === true) return undefined;
  return options.newerRevisionHint.toLowerCase();
}

/** Whether two revisions name the same commit (one may be abbreviated). */
export function sameRevision(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x.startsWith(y) || y.startsWith(x);
}

/** Triggers merged into the one queued run. */
export class TriggerBatch {
  /** Up to MAX_REASONS plain and up to MAX_REASONS hinted entries: an absorb may remove every hinted one. */
  private shown: Entry[] = [];
  private seq = 0;
  /** Triggers not kept in `shown`, by announced commit ('' for plain triggers), so an absorb keeps the count right. */
  private readonly dropped = new Map<string, number>();
  private readonly hints = new Set<string>();
  private plain = false;
  private plainForce = false;
  private plainUrgent = false;
  private plainIgnoreWaves = false;

  /** Adds a trigger. */
  add(reason: string, options: TriggerOptions): void {
    let hint = absorbableHint(options);
    if (hint !== undefined && !this.hints.has(hint) && this.hints.size >= MAX_BATCH_HINTS) hint = undefined;
    if (hint !== undefined) {
      this.hints.add(hint);
    } else {
      this.plain = true;
      this.plainForce ||= options.force === true;
      this.plainIgnoreWaves ||= options.force === true && options.ignoreWaves === true;
      this.plainUrgent ||= options.automatic !== true;
    }
    const alike = this.shown.filter((entry) => (entry.hint === undefined) === (hint === undefined)).length;
    if (alike < MAX_REASONS) this.shown.push({ seq: (this.seq += 1), reason, ...(hint !== undefined ? { hint } : {}) });
    else this.dropped.set(hint ?? '', (this.dropped.get(hint ?? '') ?? 0) + 1);
  }

  /** Drops the triggers that only announced `revision`: the run that resolved it brings that commit already. */
  absorb(revision: string): void {
    for (const hint of [...this.hints]) {
      if (!sameRevision(hint, revision)) continue;
      this.hints.delete(hint);
      this.dropped.delete(hint);
      this.shown = this.shown.filter((entry) => entry.hint !== hint);
    }
  }

  /** Whether nothing is left to run for. */
  isEmpty(): boolean {
    return !this.plain && this.hints.size === 0;
  }

  /** Whether the run is forced (a person asked for `now`). */
  get force(): boolean {
    return this.plainForce;
  }

  /** Whether a person asked to apply without waiting for the earlier waves. */
  get ignoreWaves(): boolean {
    return this.plainIgnoreWaves;
  }

  /** Whether any trigger wants the run now rather than after the backoff (everything but polls). */
  get urgent(): boolean {
    return this.plainUrgent || this.hints.size > 0;
  }

  /** The reasons of the run: the first MAX_REASONS, oldest first, then `(and N more)`. */
  reasons(): string[] {
    let more = Math.max(0, this.shown.length - MAX_REASONS);
    for (const count of this.dropped.values()) more += count;
    const reasons = this.shown.slice(0, MAX_REASONS).map((entry) => entry.reason);
    return more > 0 ? [...reasons, `(and ${more} more)`] : reasons;
  }
}
