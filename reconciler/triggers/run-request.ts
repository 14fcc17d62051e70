/**
 * The contract between the triggers and the reconcile worker: what a run is asked (RunRequest), what it reports
 * (RunReport), how a trigger is described and decided, and the worker's snapshot and events. Plain types, so the
 * daemon, the HTTP server and the agent can speak to the worker without knowing how it schedules.
 */
import type { RetryClass } from '../errors.js';

/** What one run is asked to do. */
export interface RunRequest {
  /** Why the run happens: every trigger merged into it, oldest first (capped, see MAX_REASONS). */
  reasons: string[];
  /** Aborted when the run must stop early: shutdown past the grace period, or a caller's cancel. */
  signal: AbortSignal;
  /** A person asked for it to run now (e.g. outside a maintenance window); the run decides what that allows. */
  force: boolean;
  /** A person asked to apply without waiting for the earlier waves (`reconcile --now --ignore-waves`). */
  ignoreWaves?: boolean;
  /**
   * The run reports the revision it resolved and will bring the host to (or decide about), as soon as it knows it:
   * webhooks announcing that same commit are then absorbed instead of queueing another run. A run that will not
   * apply a new commit (a drift report) does not report it.
   */
  onRevision: (revision: string) => void;
}

/** How one run ended, as the worker needs it: the reconcile's outcome boiled down. */
export interface RunReport {
  result: string;
  /** The failure's retry class; absent on success. Only `transient` backs off. */
  retry?: RetryClass;
  revision?: string;
  durationMs: number;
}

/** The reconcile the worker drives; injected, so the daemon never knows how a reconcile works. */
export type RunFunction = (request: RunRequest) => Promise<RunReport>;

/** Options of one trigger. */
export interface TriggerOptions {
  /** Passed to the run as `force` (any forced trigger makes the merged run forced). */
  force?: boolean;
  /** Passed to the run as `ignoreWaves` (only with force: a person's `reconcile --now --ignore-waves`). */
  ignoreWaves?: boolean;
  /**
   * The commit a webhook announced: a hint only. It never cancels a run; it is absorbed (no run) when the running
   * run resolved that commit or a past run settled it, and otherwise starts or queues a run like any trigger.
   */
  newerRevisionHint?: string;
  /** An automatic trigger (the poller): waits out the backoff after transient failures instead of running now. */
  automatic?: boolean;
}

/** What the worker did with a trigger; `absorbed`: a run already brings the commit it announced, nothing to do. */
export type TriggerDecision = 'started' | 'queued' | 'deferred' | 'absorbed' | 'refused';

/** The logger the triggers write to (pino's shape, the same as run-context's Logger). */
export interface TriggerLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** Options of the worker. */
export interface WorkerOptions {
  run: RunFunction;
  log?: TriggerLogger;
  /** First backoff after a transient failure (default 5 s); doubles per consecutive failure. */
  initialBackoffMs?: number;
  /** The longest backoff (default 10 min). */
  maxBackoffMs?: number;
  /** A number in [0, 1) for the jitter; injectable for tests. */
  random?: () => number;
}

/** The abort reason the worker gives a run's signal. */
export class RunCancelledError extends Error {
  /** `shutdown`: the daemon is stopping; `manual`: asked by a caller. */
  readonly why: 'shutdown' | 'manual';

  constructor(why: RunCancelledError['why'], message: string) {
    super(message);
    this.name = 'RunCancelledError';
    this.why = why;
  }
}

/** The worker's state, for `/status` and the metrics. */
export interface WorkerSnapshot {
  state: 'idle' | 'running' | 'backing-off' | 'stopping' | 'stopped';
  running?: { reasons: string[]; force: boolean; revision?: string; startedAt: string };
  /** Whether a run is queued behind the running one. */
  queued: boolean;
  /** Consecutive transient failures. */
  failures: number;
  /** When the automatic retry after a transient failure is due. */
  backoffUntil?: string;
  lastRun?: RunReport & { reasons: string[]; endedAt: string; cancelled?: RunCancelledError['why'] };
  /** Runs started since the worker was created. */
  runs: number;
}

/** The payload of `run-start`. */
export interface RunStartEvent {
  reasons: string[];
  force: boolean;
}

/** The payload of `run-end`. */
export interface RunEndEvent {
  reasons: string[];
  report: RunReport;
  /** Set when the worker aborted the run's signal. */
  cancelled?: RunCancelledError['why'];
  /** The delay before the automatic retry, after a transient failure. */
  backoffMs?: number;
}

/** The payload of `trigger`: every trigger and what the worker did with it (for logs and metrics). */
export interface TriggerEvent {
  reason: string;
  decision: TriggerDecision;
  automatic: boolean;
}

/** The worker's events: trigger, run-start, run-end, and cancel (the running run's signal was aborted). */
export interface WorkerEvents {
  trigger: [TriggerEvent];
  'run-start': [RunStartEvent];
  'run-end': [RunEndEvent];
  cancel: [RunCancelledError];
}

/** How many reasons a run carries; a burst of 500 webhooks is summarized, not listed. */
export const MAX_REASONS = 20;
