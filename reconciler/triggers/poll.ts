/**
 * Polling, the fallback for webhooks that never arrive: a chain of timers, each `interval + random(0..jitter)`,
 * so a fleet started together does not fetch together. The poller only asks; the worker decides (and holds polls
 * back while it backs off).
 */

/** Options of the poller. */
export interface PollOptions {
  /** Default 60 s. */
  intervalMs?: number;
  /** Up to this much is added to each interval (default 10 s, as in the host config). */
  jitterMs?: number;
  /** Called on each tick; the tick number starts at 1. */
  trigger: (tick: number) => void;
  /** Told when `trigger` throws; polling goes on. */
  onError?: (error: unknown) => void;
  /** A number in [0, 1) for the jitter; injectable for tests. */
  random?: () => number;
}

/** A running poller. */
export interface Poller {
  stop(): void;
}

/** The default polling interval. */
export const DEFAULT_POLL_INTERVAL_MS = 60_000;

/** The default jitter added to each interval. */
export const DEFAULT_POLL_JITTER_MS = 10_000;

/** Starts polling; the first tick comes one (jittered) interval from now. */
export function startPolling(options: PollOptions): Poller {
  const interval = options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const jitter = options.jitterMs ?? DEFAULT_POLL_JITTER_MS;
  const random = options.random ?? Math.random;
  if (!(interval > 0)) throw new RangeError(`poll interval must be positive, got ${interval} ms`);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let tick = 0;
  const schedule = (): void => {
    timer = setTimeout(() => {
      if (stopped) return;
      tick += 1;
      schedule();
      try {
        options.trigger(tick);
      } catch (error) {
        options.onError?.(error);
      }
    }, interval + Math.round(random() * Math.max(0, jitter)));
    // Timers alone never keep the process alive: the HTTP server does, in the daemon.
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
