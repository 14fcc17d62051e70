/**
 * The agent behind `edge-reconciler serve`: the host config becomes a run context for every reconcile (secrets
 * are read afresh each run, so a rotated secret is used at once), the daemon feeds one worker from webhooks,
 * polls and manual triggers, and the watchers turn hand edits of managed files (drift) and changes of the secrets
 * dir into triggers of their own.
 */
import { performance } from 'node:perf_hooks';
import { setupSecrets } from '../secrets/secrets.js';
import { startDaemon, type Daemon } from './daemon.js';
import { EdgeError } from '../errors.js';
import { ExecRunner, Host, RecordingRunner, type CommandRunner } from '../host/host.js';
import type { HostConfig } from '../config/host-config.js';
import type { InventoryEntry } from '../state/inventory.js';
import { AgentMetrics } from './metrics.js';
import { setupFleet, WaveRecheck, type Fleet } from './fleet.js';
import { fleetSourceFromConfig } from '../fleet/fleet-config.js';
import { gatherFleet, sharedGatherer } from '../fleet/fleet-gather.js';
import { renderFleetPage } from '../fleet/fleet-page.js';
import { ENGINE_VERSION } from '../version.js';
import { DEFAULT_PATH_POLICY } from '../host/path-policy.js';
import { reconcile, type ReconcileOptions, type ReconcileOutcome } from '../reconcile.js';
import { redactorFor, type Redactor } from '../secrets/redact.js';
import { logAt, runLogLevel, type Logger, type RunContext } from '../run-context.js';
import { StateStore } from '../state/state-store.js';
import { readSuspension } from '../state/suspend.js';
import { liveGeneration, readStatus, recordRun } from '../state/status.js';
import { readStatusView } from '../state/status-view.js';
import { watchManagedFiles, watchSecrets, type DriftWatcher, type SecretsWatcher } from '../triggers/watch.js';
import type { RunReport, RunRequest } from '../triggers/run-request.js';
import type { AppWatch } from '../triggers/webhook.js';
import { rewriteAppUrl } from '../source/app-source.js';

/** A running agent. */
export interface Agent {
  daemon: Daemon;
  stop(): Promise<void>;
  /** Resolves when the agent has stopped (SIGTERM, or `stop()`). */
  closed: Promise<void>;
}

/** Options besides the host config. */
export interface AgentOptions {
  log: Logger;
  /** Lets the logger redact the current secret values (it is created before any secret is read). */
  setRedactor?: (redact: Redactor) => void;
  /** Record activation instead of running it (a sandbox root); only for tests and demos. */
  dryActivate?: boolean;
  /** The command runner, for in-process tests (systemctl recorded, health probes real); overrides dryActivate. */
  runner?: CommandRunner;
  handleSignals?: boolean;
  /** When set, `POST /reconcile` needs `Authorization: Bearer <token>` besides a loopback peer. */
  reconcileToken?: string;
}

/** How a run's reasons and the drift policy decide what the run may do. */
export function runMode(config: HostConfig, reasons: readonly string[]): ReconcileOptions['mode'] {
  if (config.drift.policy !== 'report') return 'apply';
  return reasons.length > 0 && reasons.every((reason) => reason.startsWith('drift ')) ? 'report' : 'apply-new';
}

/**
 * What a run tells the worker: a drift report never applies a new commit, so it does not report its revision and
 * absorbs none of the webhooks that announce one.
 */
export function reportedRequest(mode: ReconcileOptions['mode'], request: Pick<RunRequest, 'signal' | 'onRevision'>): Pick<RunRequest, 'signal' | 'onRevision'> {
  return mode === 'report' ? { signal: request.signal, onRevision: () => undefined } : request;
}

/** The run context of one reconcile, built from the host config (with the fleet's wave gate and forge reporter). */
export async function contextFromConfig(config: HostConfig, options: AgentOptions, request?: Pick<RunRequest, 'signal' | 'onRevision'>, fleet: Fleet = {}): Promise<RunContext> {
  const secrets = await setupSecrets(config.secretsDir);
  const extra = config.webhook.secret ? [config.webhook.secret] : [];
  const redact = extra.length > 0 ? chain(secrets.redact, redactorFor(extra)) : secrets.redact;
  options.setRedactor?.(redact);
  return {
    hostName: config.host,
    host: new Host(config.root),
    secrets: secrets.source,
    redact,
    policy: DEFAULT_PATH_POLICY,
    log: options.log,
    signal: request?.signal,
    onRevision: request?.onRevision,
    store: new StateStore(config.stateDir),
    cacheDir: `${config.stateDir}/cache`,
    runner: options.runner ?? (options.dryActivate ? new RecordingRunner() : new ExecRunner()),
    source: {
      repo: config.repo,
      ...(config.tagPattern ? { tagPattern: config.tagPattern } : { ref: config.ref }),
      ...(config.path ? { path: config.path } : {}),
      auth: config.auth,
      trust: config.trust,
      limits: config.limits,
    },
    apps: { insteadOf: config.apps.insteadOf, auth: config.apps.auth, timeoutMs: config.apps.fetchTimeoutSeconds * 1000 },
    deadmanSeconds: config.deadmanSeconds,
    keepGenerations: config.keepGenerations,
    hookTimeoutMs: config.hookTimeoutSeconds * 1000,
    maintenance: config.maintenance,
    ...(fleet.gate ? { waves: fleet.gate } : {}),
    ...(fleet.reporter ? { onApplying: (revision: string) => fleet.reporter?.applying(revision) } : {}),
  };
}

function chain(a: Redactor, b: Redactor): Redactor {
  return (text) => b(a(text));
}

/** Starts the daemon and the watchers for a host config. */
export async function startAgent(config: HostConfig, options: AgentOptions): Promise<Agent> {
  const { log } = options;
  const store = new StateStore(config.stateDir);
  await store.init();
  const host = new Host(config.root);
  // A damaged state dir must not keep the agent from starting: its first run names the damage (or repairs it).
  let live: InventoryEntry[] = await liveInventory(store, config.host).catch(() => []);
  const metrics = new AgentMetrics();
  const initialStatus = await readStatus(store, config.host).catch(() => undefined);
  const initial = initialStatus?.lastApplied;
  if (initial) metrics.setLive(initial);
  const lastGood = initialStatus?.history.find((run) => run.result === 'applied' || run.result === 'unchanged');
  if (lastGood) metrics.setLastSuccess(new Date(lastGood.at));
  metrics.setPollInterval(config.poll.enabled ? config.poll.intervalSeconds : 0);
  if (initialStatus?.apps) metrics.setApps(initialStatus.apps);
  let followed: AppWatch[] = await followedApps(store, config).catch(() => []);
  let applying = false;
  let drift: DriftWatcher | undefined;
  // The latest run's redactor: forge descriptions and the fleet page never carry this host's secret values.
  let redactNow: Redactor = (text) => text;
  const fleet = await setupFleet(config, { log, redact: () => redactNow, onPost: (ok) => metrics.countForgePost(ok) });
  let recheck: WaveRecheck | undefined;
  const started: { daemon?: Daemon } = {};
  const selfStatus = async (): Promise<object> => ({ ...(await readStatusView(store, config.host)), ...(started.daemon ? { daemon: started.daemon.worker.snapshot() } : {}) });
  // Before the first run has read the secrets, the page redacts with the secrets as they are at start.
  await setupSecrets(config.secretsDir).then(
    (secrets) => (redactNow = config.webhook.secret ? chain(secrets.redact, redactorFor([config.webhook.secret])) : secrets.redact),
    () => undefined,
  );
  const fleetView = sharedGatherer(() => gatherFleet(fleetSourceFromConfig(config, selfStatus, (text) => redactNow(text))));

  /** What the watchers go by (drift's inventory, the followed app branches), as the live generation now has them. */
  const refreshWatches = async (): Promise<void> => {
    live = await liveInventory(store, config.host).catch(() => live);
    followed = await followedApps(store, config).catch(() => followed);
  };
  const run = async (request: RunRequest): Promise<RunReport> => {
    const started = performance.now();
    applying = true;
    let refreshed = false;
    try {
      const mode = runMode(config, request.reasons);
      let ctx: RunContext;
      try {
        ctx = await contextFromConfig(config, options, reportedRequest(mode, request), fleet);
        redactNow = ctx.redact;
      } catch (error) {
        return await recordSetupFailure(store, config.host, error, started, log);
      }
      const outcome = await reconcile(ctx, { mode, force: request.force, ignoreWaves: request.ignoreWaves === true, lockWaitMs: 60_000 });
      // Before the outcome is told: a push to an app this run made live, sent by someone who saw it, is not ignored.
      await refreshWatches();
      refreshed = true;
      logOutcome(log, outcome, request.reasons);
      metrics.observe({
        result: outcome.result,
        durations: outcome.state.durations,
        durationMs: outcome.durationMs,
        ...(outcome.result === 'applied' && outcome.revision && outcome.generation !== undefined
          ? { applied: { revision: outcome.revision, generation: outcome.generation } }
          : {}),
        ...(outcome.drift ? { drift: outcome.drift.length } : {}),
      });
      if (outcome.apps) metrics.setApps(outcome.apps);
      reportToFleet(outcome);
      return { result: outcome.result, retry: outcome.error?.retry, revision: outcome.revision, durationMs: outcome.durationMs };
    } finally {
      if (!refreshed) await refreshWatches();
      applying = false;
      await drift?.refresh();
    }
  };

  /** The forge hears every outcome; the metrics and the re-check timer follow the wave. */
  const reportToFleet = (outcome: Awaited<ReturnType<typeof reconcile>>): void => {
    const failedCheck = outcome.state.health?.failed;
    fleet.reporter?.finished({
      result: outcome.result,
      ...(outcome.revision ? { revision: outcome.revision } : {}),
      ...(outcome.generation !== undefined ? { generation: outcome.generation } : {}),
      ...(outcome.error ? { code: outcome.error.code, reason: outcome.error.message } : {}),
      ...(failedCheck && outcome.result !== 'applied' ? { failedCheck: { name: failedCheck.name, message: failedCheck.message } } : {}),
    });
    if (outcome.wave || ['applied', 'unchanged'].includes(outcome.result)) {
      metrics.setWave({ waiting: outcome.result === 'waiting', halted: outcome.result === 'halted' });
    }
    recheck?.afterRun(outcome.result);
  };

  const daemon = await startDaemon({
    listen: config.listen,
    run,
    readStatus: () => readStatusView(store, config.host),
    log,
    metrics: async () => {
      metrics.setHold(await holdOf(store));
      return metrics.render();
    },
    page: async () => renderFleetPage(await fleetView(), ENGINE_VERSION),
    ...(config.webhook.enabled && config.webhook.secret
      ? { webhook: { secret: config.webhook.secret, watch: config.tagPattern ? { tagPattern: config.tagPattern } : watchedRef(config.ref ?? 'release'), apps: () => followed } }
      : {}),
    poll: config.poll.enabled ? { intervalMs: config.poll.intervalSeconds * 1000, jitterMs: config.poll.jitterSeconds * 1000 } : false,
    backoff: { initialMs: config.backoff.initialSeconds * 1000, maxMs: config.backoff.maxSeconds * 1000 },
    handleSignals: options.handleSignals ?? true,
    ...(options.reconcileToken !== undefined ? { reconcileToken: options.reconcileToken } : {}),
  });

  if (fleet.gate) recheck = new WaveRecheck(config.waves.recheckSeconds * 1000, () => daemon.trigger('waves: asking the earlier waves again'));

  started.daemon = daemon;
  if (config.drift.watch) {
    drift = await watchManagedFiles({
      host,
      inventory: () => live,
      isApplying: () => applying,
      log,
      onDrift: (changes) => {
        log.warn({ drift: changes }, `drift: ${changes.map((change) => `${change.path} (${change.kind})`).join(', ')}`);
        daemon.trigger(`drift ${changes.map((change) => change.path).join(' ')}`);
      },
    });
  }
  let secrets: SecretsWatcher | undefined;
  try {
    secrets = await watchSecrets({ dir: config.secretsDir, log, onChange: (names) => daemon.trigger(`secrets ${names.join(' ')}`) });
  } catch (error) {
    log.warn({ err: String(error) }, `not watching the secrets dir ${config.secretsDir}`);
  }

  const closed = daemon.closed.then(async () => {
    recheck?.stop();
    await fleet.reporter?.close();
    await drift?.close();
    await secrets?.close();
  });
  return {
    daemon,
    closed,
    async stop() {
      await daemon.stop();
      await closed;
    },
  };
}

/** Whether the host is suspended or pinned now; an unreadable file counts as neither (the run names the damage). */
async function holdOf(store: StateStore): Promise<{ suspended: boolean; pinned: boolean }> {
  const [suspension, pin] = await Promise.all([readSuspension(store.dir).catch(() => undefined), store.pin().catch(() => undefined)]);
  return { suspended: suspension !== undefined, pinned: pin !== undefined };
}

/** The live apps that follow a branch, with their repo's URLs as declared and as fetched (app push webhooks). */
async function followedApps(store: StateStore, config: HostConfig): Promise<AppWatch[]> {
  const releases = (await liveGeneration(store, config.host))?.releases ?? [];
  return releases.flatMap((release) =>
    release.follow ? [{ app: release.app, branch: release.follow, repos: [...new Set([release.repo, rewriteAppUrl(release.repo, config.apps.insteadOf)])] }] : [],
  );
}

async function liveInventory(store: StateStore, host: string): Promise<InventoryEntry[]> {
  return (await liveGeneration(store, host))?.inventory ?? [];
}

/**
 * The line that ends a run, at the level of its result (docs/logs.md): the fields Loki labels on, and every
 * command the run ran, whole (argv arrays; the logger redacts secret values in them).
 */
export function logOutcome(log: Logger, outcome: ReconcileOutcome, reasons: readonly string[]): void {
  logAt(
    log,
    runLogLevel(outcome.result),
    {
      result: outcome.result,
      revision: outcome.revision,
      generation: outcome.generation,
      reasons,
      durationMs: outcome.durationMs,
      ...(outcome.error ? { code: outcome.error.code, stage: outcome.error.stage } : {}),
      ...(outcome.drift ? { drift: outcome.drift } : {}),
      ...(outcome.state.commands.length > 0 ? { commands: outcome.state.commands.map((argv) => argv.join(' ')) } : {}),
    },
    outcome.error ? `reconcile ${outcome.result}: ${outcome.error.message}` : `reconcile ${outcome.result}`,
  );
}

/** A run that could not even start (an unreadable secrets dir): recorded like any other, never thrown. */
async function recordSetupFailure(store: StateStore, host: string, error: unknown, started: number, log: Logger): Promise<RunReport> {
  const edge = error instanceof EdgeError ? error : new EdgeError('INTERNAL', String(error), { stage: 'fetch', retry: 'transient' });
  const durationMs = Math.round(performance.now() - started);
  await recordRun(store, host, {
    at: new Date().toISOString(),
    result: edge.retry === 'invalid' ? 'invalid' : 'failed',
    stage: edge.stage,
    code: edge.code,
    reason: edge.message,
    durationMs,
    durations: {},
  });
  log.error({ code: edge.code, stage: edge.stage, result: edge.retry === 'invalid' ? 'invalid' : 'failed' }, edge.message);
  return { result: 'failed', retry: edge.retry, durationMs };
}

/** What a webhook must name for a `ref`: a tag written in full (`refs/tags/v1`) is that one tag, else the branch. */
function watchedRef(ref: string): { branch: string } | { tagPattern: string } {
  return ref.startsWith('refs/tags/') ? { tagPattern: ref.slice('refs/tags/'.length) } : { branch: ref };
}
