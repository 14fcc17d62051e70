/**
 * `edge-reconciler serve`: the triggers (webhooks, polls, `POST /reconcile`, and whatever the caller adds)
 * feeding one reconcile worker, the control endpoints, and the signal handling. The reconcile itself is injected:
 * the daemon only decides when to run it, never how.
 */
import type { Logger } from '../run-context.js';
import { createControlServer, DEFAULT_LISTEN, type ControlServer, type ServerLimits } from '../triggers/http-server.js';
import { DEFAULT_POLL_INTERVAL_MS, startPolling, type Poller } from '../triggers/poll.js';
import type { WebhookOptions } from '../triggers/webhook.js';
import type { RunFunction, TriggerDecision, TriggerOptions } from '../triggers/run-request.js';
import { ReconcileWorker } from '../triggers/worker.js';

/** Options of the daemon. */
export interface DaemonOptions {
  /** The control address, `host:port`; default 127.0.0.1:9321. */
  listen?: string;
  /** One reconcile; the worker guarantees only one runs at a time. */
  run: RunFunction;
  /** The status document served as `/status`. */
  readStatus: () => Promise<object>;
  /** The Prometheus text served as `/metrics` (absent: 404). */
  metrics?: () => Promise<string>;
  /** The fleet page served as `/` (absent: 404). */
  page?: () => Promise<string>;
  log: Logger;
  /** Webhook secret and watched ref; without them the webhook routes answer 404. */
  webhook?: WebhookOptions;
  /** When set, `POST /reconcile` needs `Authorization: Bearer <token>` besides a loopback peer. */
  reconcileToken?: string;
  /** Overrides of the control server's limits (timeouts, connections, bodies at once). */
  httpLimits?: Partial<ServerLimits>;
  /** Polling (default every 60 s plus up to 10 s jitter); `false` turns it off. */
  poll?: { intervalMs?: number; jitterMs?: number } | false;
  /** Backoff after transient failures (default 5 s doubling up to 10 min). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long a stop lets the running reconcile finish before aborting it (default 60 s). */
  stopGraceMs?: number;
  /** Reconcile once right away (default true). */
  runAtStart?: boolean;
  /** Stop on SIGTERM and SIGINT (default true; tests turn it off). */
  handleSignals?: boolean;
  /** A number in [0, 1) for the jitters; injectable for tests. */
  random?: () => number;
}

/** A running daemon. */
export interface Daemon {
  /** The bound control address (the real port when `listen` asked for port 0). */
  host: string;
  port: number;
  url: string;
  worker: ReconcileWorker;
  /** Asks for a reconcile; for the watchers (drift, rotated secrets) the caller adds. */
  trigger(reason: string, options?: TriggerOptions): TriggerDecision;
  /** Stops polling and serving, lets the running reconcile and open requests finish, or ends them after the grace. */
  stop(): Promise<void>;
  /** Resolves once the daemon has stopped, whoever stopped it (a signal, or `stop()`). */
  closed: Promise<void>;
}

/** The default grace period of a stop. */
export const DEFAULT_STOP_GRACE_MS = 60_000;

/** Starts the worker, the poller and the control server; resolves once the server listens. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { log } = options;
  const worker = new ReconcileWorker({
    run: options.run,
    log,
    ...(options.backoff?.initialMs !== undefined ? { initialBackoffMs: options.backoff.initialMs } : {}),
    ...(options.backoff?.maxMs !== undefined ? { maxBackoffMs: options.backoff.maxMs } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
  const server: ControlServer = await createControlServer({
    listen: options.listen ?? DEFAULT_LISTEN,
    worker,
    status: options.readStatus,
    log,
    ...(options.webhook ? { webhook: options.webhook } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.page ? { page: options.page } : {}),
    ...(options.reconcileToken !== undefined ? { reconcileToken: options.reconcileToken } : {}),
    ...(options.httpLimits ? { limits: options.httpLimits } : {}),
  });
  const poller: Poller | undefined =
    options.poll === false
      ? undefined
      : startPolling({
          intervalMs: options.poll?.intervalMs ?? DEFAULT_POLL_INTERVAL_MS,
          ...(options.poll?.jitterMs !== undefined ? { jitterMs: options.poll.jitterMs } : {}),
          trigger: (tick) => worker.trigger(`poll ${tick}`, { automatic: true }),
          onError: (error) => log.error({ err: error }, 'poll trigger failed'),
          ...(options.random ? { random: options.random } : {}),
        });
  log.info({ url: server.url, webhooks: options.webhook !== undefined, poll: options.poll !== false }, 'daemon listening');

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let stopping: Promise<void> | undefined;
  const graceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal means "now": abort the running reconcile instead of waiting out the grace period.
      worker.cancelCurrent(`${signal} received again while stopping`, 'shutdown');
      return;
    }
    log.info({ signal, graceMs }, 'stopping: the running reconcile may finish within the grace period');
    void stop();
  };
  const handleSignals = options.handleSignals ?? true;
  if (handleSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      poller?.stop();
      // Open requests get the same grace as the run; a client still trickling bytes after it is disconnected.
      const [closing] = await Promise.allSettled([server.close(graceMs), worker.stop(graceMs)]);
      if (closing.status === 'rejected') log.warn({ err: closing.reason }, 'control server did not close cleanly');
      if (handleSignals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      log.info({}, 'daemon stopped');
      resolveClosed();
    })();
    return stopping;
  };

  if (options.runAtStart ?? true) worker.trigger('startup');
  return {
    host: server.host,
    port: server.port,
    url: server.url,
    worker,
    trigger: (reason, triggerOptions) => worker.trigger(reason, triggerOptions),
    stop,
    closed,
  };
}
