/**
 * The one reconcile worker of the daemon. Triggers (webhooks, polls, `POST /reconcile`, watchers) never run a
 * reconcile themselves: they ask the worker, which runs at most one at a time and coalesces everything that
 * arrives meanwhile into a single queued run. A webhook's commit is a hint, never an order: it may start or queue a
 * run, and it is absorbed when a run already resolved that commit, but it never cancels a run (a replayed old
 * delivery must not stop the deployment of a newer commit, and only a run could tell which commit is newer).
 * Transient failures back off exponentially; polls wait the backoff out, people and forges do not.
 */
import { EventEmitter } from 'node:events';
import { absorbableHint, sameRevision, TriggerBatch } from './trigger-batch.js';
import {
  RunCancelledError,
  type RunReport,
  type TriggerDecision,
  type TriggerLogger,
  type TriggerOptions,
  type WorkerEvents,
  type WorkerOptions,
  type WorkerSnapshot,
} from './run-request.js';

const DEFAULT_INITIAL_BACKOFF_MS = 5_000;
const DEFAULT_MAX_BACKOFF_MS = 600_000;
/** How many settled revisions the worker remembers to absorb late hints for them. */
const MAX_SETTLED = 32;

interface Running {
  reasons: string[];
  force: boolean;
  ignoreWaves: boolean;
  controller: AbortController;
  revision?: string;
  cancelled?: RunCancelledError['why'];
  startedAt: Date;
  done: Promise<void>;
}

/** Runs one reconcile at a time; coalesces triggers; backs off after transient failures. */
export class ReconcileWorker extends EventEmitter<WorkerEvents> {
  private readonly options: Required<Omit<WorkerOptions, 'log'>> & { log?: TriggerLogger };
  private running?: Running;
  /** Triggers that arrived while running, or polls deferred by the backoff. */
  private queued?: TriggerBatch;
  /** Revisions that runs resolved and ended on without a transient failure, newest last. */
  private readonly settled: string[] = [];
  private failures = 0;
  private backoffUntil = 0;
  private retryTimer?: NodeJS.Timeout;
  private stopping = false;
  private stopped = false;
  private runs = 0;
  private lastRun?: WorkerSnapshot['lastRun'];
  private idleWaiters: (() => void)[] = [];

  constructor(options: WorkerOptions) {
    super();
    this.options = {
      run: options.run,
      ...(options.log ? { log: options.log } : {}),
      initialBackoffMs: options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS,
      maxBackoffMs: options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
      random: options.random ?? Math.random,
    };
  }

  /** Asks for a run: starts it when idle, otherwise queues (at most one run is ever queued). */
  trigger(reason: string, options: TriggerOptions = {}): TriggerDecision {
    const decision = this.decide(reason, options);
    this.emit('trigger', { reason, decision, automatic: options.automatic === true });
    return decision;
  }

  /** Aborts the running run's signal (no-op when idle). The run is expected to stop safely and report. */
  cancelCurrent(reason: string, why: RunCancelledError['why'] = 'manual'): boolean {
    const running = this.running;
    if (!running || running.controller.signal.aborted) return false;
    const error = new RunCancelledError(why, reason);
    running.cancelled = why;
    running.controller.abort(error);
    this.options.log?.warn({ why, reasons: running.reasons, revision: running.revision }, `cancelling the running reconcile: ${reason}`);
    this.emit('cancel', error);
    return true;
  }

  /** Whether automatic triggers are being held back after transient failures. */
  isBackingOff(): boolean {
    return this.backoffUntil > Date.now();
  }

  /** Resolves when nothing runs and nothing is queued to run now (a deferred retry does not count). */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops for good (SIGTERM): refuses new triggers, drops the queue, lets the running run finish within
   * `graceMs`, then aborts its signal and waits for it to stop safely.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.queued = undefined;
    this.clearRetry();
    const running = this.running;
    if (running) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace-over'>((resolve) => {
        timer = setTimeout(() => resolve('grace-over'), graceMs);
      });
      const first = await Promise.race([running.done.then(() => 'done' as const), graceOver]);
      clearTimeout(timer);
      if (first === 'grace-over') {
        this.cancelCurrent(`the daemon is stopping and the run did not finish within ${graceMs} ms`, 'shutdown');
        await running.done;
      }
    }
    this.stopped = true;
  }

  /** The worker's state, for `/status`. */
  snapshot(): WorkerSnapshot {
    const running = this.running;
    const state = this.stopped ? 'stopped' : this.stopping ? 'stopping' : running ? 'running' : this.isBackingOff() ? 'backing-off' : 'idle';
    return {
      state,
      ...(running
        ? {
            running: {
              reasons: running.reasons,
              force: running.force,
              ...(running.revision ? { revision: running.revision } : {}),
              startedAt: running.startedAt.toISOString(),
            },
          }
        : {}),
      queued: this.queued !== undefined && (running !== undefined || this.queued.urgent),
      failures: this.failures,
      ...(this.isBackingOff() ? { backoffUntil: new Date(this.backoffUntil).toISOString() } : {}),
      ...(this.lastRun ? { lastRun: this.lastRun } : {}),
      runs: this.runs,
    };
  }

  private decide(reason: string, options: TriggerOptions): TriggerDecision {
    if (this.stopping) return 'refused';
    const hint = absorbableHint(options);
    if (hint !== undefined && this.isHandled(hint)) return 'absorbed';
    const batch = this.merge(reason, options);
    if (this.running) return 'queued';
    if (!batch.urgent && this.isBackingOff()) {
      this.scheduleRetry();
      return 'deferred';
    }
    this.startQueued();
    return 'started';
  }

  private merge(reason: string, options: TriggerOptions): TriggerBatch {
    const batch = (this.queued ??= new TriggerBatch());
    batch.add(reason, options);
    return batch;
  }

  /** Whether a run already brings the announced commit: the running one resolved it, or a past one settled it. */
  private isHandled(hint: string): boolean {
    const target = this.running?.revision;
    if (target !== undefined && sameRevision(hint, target)) return true;
    return this.settled.some((revision) => sameRevision(hint, revision));
  }

  /** The queued triggers that only announced `revision` are absorbed by the run that resolved it. */
  private absorbQueued(revision: string): void {
    if (!this.queued) return;
    this.queued.absorb(revision);
    if (this.queued.isEmpty()) {
      this.queued = undefined;
      this.clearRetry();
    }
  }

  private remember(revision: string): void {
    const known = this.settled.findIndex((other) => sameRevision(other, revision));
    if (known >= 0) this.settled.splice(known, 1);
    this.settled.push(revision.toLowerCase());
    if (this.settled.length > MAX_SETTLED) this.settled.shift();
  }

  private startQueued(): void {
    const batch = this.queued;
    if (!batch || this.stopping) return;
    this.queued = undefined;
    this.clearRetry();
    const running: Running = {
      reasons: batch.reasons(),
      force: batch.force,
      ignoreWaves: batch.ignoreWaves,
      controller: new AbortController(),
      startedAt: new Date(),
      done: Promise.resolve(),
    };
    this.running = running;
    this.runs += 1;
    running.done = this.execute(running);
  }

  private async execute(running: Running): Promise<void> {
    const { reasons, force } = running;
    this.emit('run-start', { reasons, force });
    this.options.log?.info({ reasons, force }, 'reconcile starting');
    const onRevision = (revision: string): void => {
      if (this.running !== running) return;
      running.revision = revision;
      this.absorbQueued(revision);
    };
    const started = Date.now();
    let report: RunReport;
    try {
      report = await this.options.run({ reasons, force, ...(running.ignoreWaves ? { ignoreWaves: true } : {}), signal: running.controller.signal, onRevision });
    } catch (error) {
      // The run is meant to report failures, not throw them; a throw is treated as transient so it is retried.
      this.options.log?.error({ err: error, reasons }, 'reconcile threw instead of reporting');
      report = { result: 'failed', retry: 'transient', durationMs: Date.now() - started };
    }
    const backoffMs = this.account(report, running.cancelled);
    // A transient failure retries by itself, so only a run that ended otherwise settles its revision.
    if (running.revision !== undefined && running.cancelled === undefined && report.retry !== 'transient') this.remember(running.revision);
    this.lastRun = {
      ...report,
      reasons,
      endedAt: new Date().toISOString(),
      ...(running.cancelled ? { cancelled: running.cancelled } : {}),
    };
    this.running = undefined;
    this.options.log?.info(
      { reasons, result: report.result, retry: report.retry, revision: report.revision, durationMs: report.durationMs, backoffMs },
      'reconcile ended',
    );
    this.emit('run-end', {
      reasons,
      report,
      ...(running.cancelled ? { cancelled: running.cancelled } : {}),
      ...(backoffMs !== undefined ? { backoffMs } : {}),
    });
    this.next();
  }

  /** Updates the failure count; returns the backoff delay after a transient failure. */
  private account(report: RunReport, cancelled: RunCancelledError['why'] | undefined): number | undefined {
    // A run we cancelled failed because of us, not because the world is flaky.
    if (cancelled !== undefined) return undefined;
    if (report.retry !== 'transient') {
      this.failures = 0;
      this.backoffUntil = 0;
      return undefined;
    }
    this.failures += 1;
    const ceiling = Math.min(this.options.maxBackoffMs, this.options.initialBackoffMs * 2 ** (this.failures - 1));
    // Equal jitter: half the delay is fixed, half random, so hosts that failed together do not retry together.
    const delay = Math.round(ceiling / 2 + this.options.random() * (ceiling / 2));
    this.backoffUntil = Date.now() + delay;
    return delay;
  }

  /** After a run: start the queued run now, or schedule it for the end of the backoff. */
  private next(): void {
    if (this.stopping) {
      this.releaseIdle();
      return;
    }
    if (this.isBackingOff()) {
      this.merge(`retry after ${this.failures} transient failure${this.failures === 1 ? '' : 's'}`, { automatic: true });
      if (this.queued?.urgent) this.startQueued();
      else this.scheduleRetry();
    } else if (this.queued) {
      this.startQueued();
    }
    if (!this.running) this.releaseIdle();
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    const delay = Math.max(0, this.backoffUntil - Date.now());
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.running) this.startQueued();
    }, delay);
    this.retryTimer.unref();
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private releaseIdle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
