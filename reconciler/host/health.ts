/**
 * Health checks of a host after activation: every check runs concurrently, retries within an overall deadline,
 * and ends as a value (healthy, unhealthy, timeout, skipped); an unhealthy host is a result, never an exception.
 * The health stage turns a report that is not healthy into a rollback.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { CommandRunner } from './host.js';
import type { HealthCheckSpec, SourceRef } from '../model.js';
import { probe, type ProbeVerdict } from './health-probes.js';

/** Ordered worst-first. */
export type HealthStatus = 'unhealthy' | 'timeout' | 'healthy' | 'skipped';

/** Every status, worst first: a report's `failed` is its worst result. */
export const HEALTH_STATUSES: readonly HealthStatus[] = ['unhealthy', 'timeout', 'healthy', 'skipped'];

/** The verdict on one check. */
export interface HealthResult {
  name: string;
  type: HealthCheckSpec['type'];
  status: HealthStatus;
  /** What the last attempt saw, e.g. `GET http://127.0.0.1:8080/healthz: 503`; redacted. */
  message: string;
  attempts: number;
  durationMs: number;
  source: SourceRef;
}

/** The verdict on all checks of a host. */
export interface HealthReport {
  /** Every result is healthy or skipped. */
  healthy: boolean;
  results: HealthResult[];
  durationMs: number;
  /** the first unhealthy/timeout result, for status */
  failed?: HealthResult;
  /** The wait was cancelled (a newer commit arrived) before every check was decided. */
  cancelled?: boolean;
}

/** How the checks run. */
export interface HealthOptions {
  runner: CommandRunner;
  /** Bounds the whole run: a check still failing then is `timeout`. */
  deadlineMs: number;
  /** Pause between two attempts of one check. */
  intervalMs: number;
  /** The host is a standby: only checks with `standby: true` run. */
  standby: boolean;
  /** A newer commit arrived: stop waiting, the remaining checks end as `timeout` "cancelled". */
  signal?: AbortSignal;
  redact?: (s: string) => string;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Defaults of the check fields (the JSON schema documents the same values). */
export const DEFAULT_TIMEOUT_SECONDS = 5;
export const DEFAULT_RETRIES = 3;

/** Slack on top of an attempt's own timeout before the loop stops waiting for a probe that ignores it. */
const PROBE_GRACE_MS = 1_000;

const CANCELLED = Symbol('cancelled');

interface RunContext {
  runner: CommandRunner;
  deadlineAt: number;
  deadlineMs: number;
  intervalMs: number;
  signal: AbortSignal;
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Runs every check concurrently and reports them all; resolves (never rejects) even when cancelled. */
export async function runHealthChecks(checks: HealthCheckSpec[], options: HealthOptions): Promise<HealthReport> {
  const now = options.now ?? Date.now;
  const redact = options.redact ?? ((text: string) => text);
  const started = now();
  const skip = (check: HealthCheckSpec, message: string): HealthResult =>
    result(check, 'skipped', message, 0, 0);

  const cancel = new AbortController();
  // Each running check and its probe listen on this signal at once: many checks are expected, not a leak.
  setMaxListeners(Math.max(10, checks.length * 4), cancel.signal);
  const onAbort = (): void => cancel.abort();
  if (options.signal?.aborted) cancel.abort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  const context: RunContext = {
    runner: options.runner,
    deadlineAt: started + options.deadlineMs,
    deadlineMs: options.deadlineMs,
    intervalMs: options.intervalMs,
    signal: cancel.signal,
    now,
    sleep: options.sleep ?? defaultSleep,
  };

  try {
    const results = await Promise.all(
      checks.map((check) => {
        // Nothing was started under --dry-activate, and a standby starts no services: there is nothing to check.
        if (options.runner.dryRun) return skip(check, 'dry-activate: not checked');
        if (options.standby && check.spec.standby !== true) return skip(check, 'standby host: not checked');
        return runCheck(check, context);
      }),
    );
    const redacted = results.map((entry) => ({ ...entry, message: redact(entry.message) }));
    const failed = worstFailure(redacted);
    const cancelled = cancel.signal.aborted && redacted.some((entry) => entry.status === 'timeout');
    return {
      healthy: failed === undefined,
      results: redacted,
      durationMs: now() - started,
      ...(failed ? { failed } : {}),
      ...(cancelled ? { cancelled } : {}),
    };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** The first result of the worst failing status (unhealthy before timeout), or undefined when none failed. */
export function worstFailure(results: HealthResult[]): HealthResult | undefined {
  for (const status of ['unhealthy', 'timeout'] as const) {
    const found = results.find((entry) => entry.status === status);
    if (found) return found;
  }
  return undefined;
}

/** One check's retry loop: attempts until healthy, out of retries (unhealthy), past the deadline or cancelled (timeout). */
async function runCheck(check: HealthCheckSpec, context: RunContext): Promise<HealthResult> {
  const started = context.now();
  const retries = nonNegative(check.spec.retries, DEFAULT_RETRIES);
  const timeoutMs = positive(check.spec.timeoutSeconds, DEFAULT_TIMEOUT_SECONDS) * 1000;
  let attempts = 0;
  let failures = 0;
  let last: ProbeVerdict | undefined;
  const end = (status: HealthStatus, message: string): HealthResult =>
    result(check, status, message, attempts, context.now() - started);
  const cancelled = (): HealthResult => end('timeout', last ? `cancelled; last attempt: ${last.message}` : 'cancelled');

  for (;;) {
    if (context.signal.aborted) return cancelled();
    const remaining = context.deadlineAt - context.now();
    if (remaining <= 0) {
      const seen = last ? `last attempt: ${last.message}` : 'not attempted';
      return end('timeout', `deadline of ${context.deadlineMs / 1000}s passed; ${seen}`);
    }
    attempts++;
    const verdict = await attempt(check, Math.min(timeoutMs, remaining), context);
    if (verdict === CANCELLED) return cancelled();
    if (verdict.ok) return end('healthy', verdict.message);
    last = verdict;
    // A unit still starting has not failed yet: it may take the whole deadline, but uses no retry.
    if (!verdict.pending) failures++;
    if (failures > retries) {
      return end('unhealthy', retries > 0 ? `${verdict.message} (after ${attempts} attempts)` : verdict.message);
    }
    const pause = Math.min(context.intervalMs, context.deadlineAt - context.now());
    if (pause > 0 && (await untilAborted(context.sleep(pause, context.signal), context.signal)) === CANCELLED) {
      return cancelled();
    }
  }
}

/** One probe, bounded by its timeout (plus grace, for a probe that ignores it) and by cancellation. */
async function attempt(
  check: HealthCheckSpec,
  timeoutMs: number,
  context: RunContext,
): Promise<ProbeVerdict | typeof CANCELLED> {
  const guard = new AbortController();
  const overdue = delay(timeoutMs + PROBE_GRACE_MS, undefined, { signal: guard.signal }).then(
    (): ProbeVerdict => ({ ok: false, message: `no answer within ${timeoutMs / 1000}s` }),
    () => undefined as never,
  );
  try {
    const verdict = probe(check, { runner: context.runner, timeoutMs, signal: context.signal });
    return await untilAborted(Promise.race([verdict, overdue]), context.signal);
  } finally {
    guard.abort();
  }
}

/** Resolves with the promise's value, or with CANCELLED as soon as `signal` aborts (the promise is left behind). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof CANCELLED> {
  if (signal.aborted) return Promise.resolve(CANCELLED);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(CANCELLED);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve(CANCELLED);
        else reject(error);
      },
    );
  });
}

async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}

function result(check: HealthCheckSpec, status: HealthStatus, message: string, attempts: number, durationMs: number): HealthResult {
  return { name: check.name, type: check.type, status, message, attempts, durationMs, source: check.source };
}

function nonNegative(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : fallback;
}

function positive(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}
