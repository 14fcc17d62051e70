/**
 * One reconcile, end to end: take the lock, resolve what a crash left behind, fetch, refuse what must not be
 * applied (a revision marked bad, a pinned host), plan, run the hooks, apply → activate → health → record, or
 * roll back. Every run ends in the status document, whatever its end.
 */
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { EdgeError } from './errors.js';
import { APPLY_PIPELINE, FETCH, PLAN_PIPELINE, runStages } from './pipeline.js';
import { MANY, preferShortRuns } from './host/short-runs.js';
import { need, type RunContext, type RunState } from './run-context.js';
import { liveGeneration, readStatus, recordRun, setAsideDamagedStatus, type RunRecord, type RunResult, type StatusDocument, type WaveStatus } from './state/status.js';
import { removeLeftovers } from './state/leftovers.js';
import { DEFAULT_KEEP_GENERATIONS } from './stages/record.js';
import { recoverInterrupted, rollBack, type Recovery } from './stages/rollback.js';
import { describeHookFailure, firstFailure, hooksFor, runHooks, type HookEnv } from '../hooks/runner.js';
import type { HookPhase } from './model.js';
import { applyGate, readSuspension } from './state/suspend.js';
import { inputsFingerprint } from './source/inputs.js';
import type { GenerationMeta } from './state/state-store.js';
import { LiveStats } from './state/live-stats.js';
import type { AppStatus } from './state/app-status.js';

/** How a reconcile ended, for the caller (exit code, logs, metrics). */
export interface ReconcileOutcome {
  result: RunResult;
  /** Managed paths that differ from the live generation (mode `report`). */
  drift?: string[];
  revision?: string;
  generation?: number;
  error?: EdgeError;
  recovery?: Recovery;
  /** The host's place in the waves, when the wave gate ran (held or passed). */
  wave?: WaveStatus;
  state: RunState;
  durationMs: number;
  /** Each app's release as the status document now says (hosts with app resources). */
  apps?: AppStatus[];
}

/** Options of one reconcile besides the context. */
export interface ReconcileOptions {
  /** Wait this long for another run's lock before refusing. */
  lockWaitMs?: number;
  /**
   * `apply` (default) applies and heals drift; `report` stops after the plan and reports what differs; `apply-new`
   * applies a new revision but only reports drift of the live one (polls under the drift policy `report`).
   */
  mode?: 'apply' | 'report' | 'apply-new';
  /** A manual run (`reconcile --now`): overrides the maintenance windows (never a suspension). */
  force?: boolean;
  /** `reconcile --now --ignore-waves`: apply without waiting for the earlier waves. */
  ignoreWaves?: boolean;
}

/** Runs one reconcile. Never throws for a failed run: the outcome carries the error. */
export function reconcile(ctx: RunContext, options: ReconcileOptions = {}): Promise<ReconcileOutcome> {
  return underLock(ctx, options, (state) => reconcileLocked(ctx, state, options));
}

/**
 * `edge-reconciler rollback`: puts the files of an earlier good generation (default: the newest good one before
 * the live one) back through the same journaled path, re-activates and checks health, then pins the host there
 * until a newer commit than the one it has seen arrives.
 */
export function rollbackToGeneration(ctx: RunContext, target?: number, options: ReconcileOptions = {}): Promise<ReconcileOutcome> {
  return underLock(ctx, options, async (state) => {
    const store = need(ctx.store, 'state store');
    const status = await readStatus(store, ctx.hostName);
    const live = await liveGeneration(store, ctx.hostName);
    const history = await store.history();
    const chosen = target !== undefined
      ? history.find((meta) => meta.generation === target)
      : history.find((meta) => meta.result === 'good' && meta.generation < (live?.generation ?? Infinity) && meta.revision !== live?.revision);
    if (!chosen || chosen.result !== 'good') {
      throw new EdgeError('NO_ROLLBACK_TARGET', target !== undefined ? `generation ${target} does not exist or was never good` : 'there is no earlier good generation to roll back to', {
        stage: 'rollback',
        retry: 'invalid',
      });
    }
    if (live) {
      state.previousGeneration = live;
      state.previous = live.inventory;
    }
    state.restoring = chosen;
    state.revision = chosen.revision;
    state.files = (await store.generationFiles(chosen.generation)).map((file) => ({
      ...file,
      source: { file: `generation ${chosen.generation}` },
      secrets: [],
      adopt: false,
    }));
    await runStages(PLAN_PIPELINE.slice(-1), ctx, state);
    try {
      await runStages(APPLY_PIPELINE, ctx, state);
    } catch (error) {
      const ended = await rollBack(ctx, state, error as EdgeError);
      return { result: ended.retry === 'stuck' ? 'failed' : 'rolled-back', revision: chosen.revision, error: ended };
    }
    const generation = need(state.generation, 'generation').generation;
    await store.setPin({
      generation,
      pinnedAgainst: status.lastAttempted?.revision ?? live?.revision,
      reason: `manual rollback to generation ${chosen.generation} (${chosen.revision.slice(0, 12)})`,
      at: new Date().toISOString(),
    });
    return { result: 'applied', revision: chosen.revision, generation };
  });
}

/** Only resolves what a crash left behind (for ExecStartPre= and for checking a host after a power cut). */
export function recoverOnly(ctx: RunContext, options: ReconcileOptions = {}): Promise<ReconcileOutcome> {
  return underLock(ctx, options, async () => ({ result: 'unchanged' }), { recordOnlyRecovery: true });
}

/** Takes the lock, resolves a crash, runs `body`, and writes the status document however it ends. */
async function underLock(
  ctx: RunContext,
  options: ReconcileOptions,
  body: (state: RunState) => Promise<PartialOutcome>,
  { recordOnlyRecovery = false } = {},
): Promise<ReconcileOutcome> {
  const store = need(ctx.store, 'state store');
  const started = performance.now();
  const state: RunState = { previous: [], commands: [], durations: {}, cleanups: [] };
  let unlock: () => Promise<void>;
  try {
    await store.init();
    unlock = await store.lock(options.lockWaitMs ?? 0);
  } catch (error) {
    // Another run owns the state dir (or it cannot be written): report, write nothing.
    const edge = error instanceof EdgeError ? error : stateDirUnusable(store.dir, error);
    return { result: 'failed', error: edge, state, durationMs: Math.round(performance.now() - started) };
  }
  let recovery: Recovery | undefined;
  try {
    await tidyStateDir(ctx);
    recovery = await recoverInterrupted(ctx, state.commands);
    if (recovery) ctx.log.warn({ recovery }, `recovered generation ${recovery.generation} after a crash: ${recovery.outcome}`);
    const outcome = await body(state);
    const result = recovery && outcome.result === 'unchanged' && !outcome.revision ? 'recovered' : outcome.result;
    // A recover that found nothing (ExecStartPre, at every start) is not a run: the status document stays as it is.
    if (recordOnlyRecovery && !recovery) return { ...outcome, result, state, durationMs: Math.round(performance.now() - started) };
    return await finish(ctx, state, { ...outcome, result, recovery }, started);
  } catch (error) {
    const edge =
      error instanceof EdgeError
        ? error
        : new EdgeError('INTERNAL', `reconcile failed unexpectedly: ${ctx.redact(error instanceof Error ? error.message : String(error))}`, {
            stage: 'fetch',
            retry: 'transient',
            cause: error,
          });
    return finish(ctx, state, { result: 'failed', revision: state.revision, error: edge, recovery }, started);
  } finally {
    // What the stages left for the end (the validators' temp trees): never a reason for the run to fail.
    for (const cleanup of state.cleanups ?? []) await cleanup().catch(() => undefined);
    if (state.tree) await rm(state.tree, { recursive: true, force: true });
    await unlock();
  }
}

type PartialOutcome = Omit<ReconcileOutcome, 'state' | 'durationMs'>;

/** The state dir cannot be created or locked (ENOSPC, EROFS, EACCES): a named error, not a stack trace. */
function stateDirUnusable(dir: string, error: unknown): EdgeError {
  const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
  return new EdgeError('STATE_DIR_UNWRITABLE', `cannot take the lock in the state dir ${dir}: ${code}; free space or fix its permissions, then run again`, {
    stage: 'fetch',
    retry: 'transient',
    cause: error,
  });
}

/** Before recovery: remove what killed runs left behind, and set a damaged status document aside to rebuild it. */
async function tidyStateDir(ctx: RunContext): Promise<void> {
  const store = need(ctx.store, 'state store');
  const removed = await removeLeftovers(store);
  if (removed.length > 0) ctx.log.warn({ removed }, `removed ${removed.length} leftover(s) of an interrupted run`);
  const aside = await setAsideDamagedStatus(store, ctx.hostName);
  if (aside) ctx.log.warn({ aside }, `${store.statusPath} was damaged: moved to ${aside}, rebuilt from the generations`);
}

/** Prunes old generations (failed ones too), never the live one nor a pinned one. */
async function pruneGenerations(ctx: RunContext, status: StatusDocument | undefined): Promise<void> {
  const store = need(ctx.store, 'state store');
  const pin = await store.pin();
  const protect = [status?.lastApplied?.generation, pin?.generation].filter((n) => n !== undefined);
  await store.prune(ctx.keepGenerations ?? DEFAULT_KEEP_GENERATIONS, protect);
}

async function reconcileLocked(ctx: RunContext, state: RunState, options: ReconcileOptions): Promise<PartialOutcome> {
  const store = need(ctx.store, 'state store');
  // The live generation is known before fetch: the trust checks compare the new revision with it.
  const live = await liveGeneration(store, ctx.hostName);
  if (live) {
    state.previousGeneration = live;
    state.previous = live.inventory;
  }
  if (live && options.mode !== 'report') state.reuseLive = (revision) => liveIsCurrent(ctx, live, revision);
  try {
    await runStages([FETCH], ctx, state);
  } catch (error) {
    if (error instanceof EdgeError && error.retry === 'refused') return { result: 'refused', revision: state.revision, error };
    throw error;
  }
  const revision = need(state.revision, 'revision');
  ctx.onRevision?.(revision);
  const pin = await store.pin();
  if (pin) {
    if (pin.pinnedAgainst === revision) return { result: 'pinned', revision, generation: pin.generation };
    await store.setPin(undefined);
    ctx.log.info({ revision }, 'a newer revision arrived: the rollback pin is lifted');
  }
  // A bad pair (revision, app commits) with a tag or followed branch is judged by prepare, once they are resolved.
  const bad = (await store.badRevisions()).find((entry) => entry.revision === revision && !(entry.releases ?? []).some((release) => release.ref));
  if (bad) {
    return {
      result: 'refused',
      revision,
      error: new EdgeError('REVISION_BAD', `revision ${revision.slice(0, 12)} is marked bad (${bad.reason}); waiting for a newer commit`, {
        stage: 'fetch',
        retry: 'refused',
      }),
    };
  }

  // Same revision, same inputs, every managed file as the generation left it: nothing to render or validate.
  if (state.reused && live) return { result: 'unchanged', revision, generation: live.generation };

  const [load, ...afterLoad] = PLAN_PIPELINE;
  let wave: WaveStatus | undefined;
  try {
    await runStages(load ? [load] : [], ctx, state);
    // The wave gate sits after load (edge.yaml names the waves) and before render: a waiting host renders nothing.
    const gated = await waveGate(ctx, state, revision, live?.revision, options);
    wave = gated?.wave;
    if (gated?.held) return { ...gated.held, revision, generation: live?.generation, wave };
    await runStages(afterLoad, ctx, state);
  } catch (error) {
    const edge = error as EdgeError;
    return { result: edge.retry === 'invalid' ? 'invalid' : edge.retry === 'refused' ? 'refused' : 'failed', revision, error: edge, ...(wave ? { wave } : {}) };
  }
  const plan = need(state.plan, 'plan');
  if (!plan.changed && live?.revision === revision) return { result: 'unchanged', revision, generation: live.generation };
  // `report` never applies; `apply-new` (polls under the report policy) applies a new revision but leaves drift
  // of the live one to be reported, not healed.
  if (options.mode === 'report' || (options.mode === 'apply-new' && live?.revision === revision && !newRelease(state, live))) {
    const drift = plan.changes.filter((change) => change.action !== 'unchanged').map((change) => change.path);
    return { result: 'drifted', revision, generation: live?.generation, drift };
  }

  const gate = applyGate({
    suspension: await readSuspension(store.dir),
    maintenance: ctx.maintenance ?? { timezone: 'UTC', windows: [] },
    now: new Date(),
    manual: options.force,
  });
  if (!gate.allowed) {
    const code = gate.code ?? 'SUSPENDED';
    return {
      result: code === 'SUSPENDED' ? 'suspended' : 'outside-window',
      revision,
      generation: live?.generation,
      error: new EdgeError(code, gate.reason, { stage: 'plan', retry: 'refused' }),
    };
  }

  const hookEnv = (generation: number, extra: Partial<HookEnv> = {}): HookEnv => ({ revision, generation, host: ctx.hostName, ...extra });
  const nextGeneration = ((await store.generations()).at(-1) ?? 0) + 1;
  const preApply = await runRepoHooks(ctx, state, 'pre-apply', hookEnv(nextGeneration));
  const failed = firstFailure(preApply);
  if (failed) {
    return {
      result: 'invalid',
      revision,
      error: new EdgeError('HOOK_FAILED', `pre-apply hook failed, nothing was changed: ${describeHookFailure(failed)}`, { stage: 'apply', retry: 'invalid' }),
    };
  }

  ctx.onApplying?.(revision);
  try {
    await runStages(APPLY_PIPELINE, ctx, state);
  } catch (error) {
    const edge = error as EdgeError;
    if (!state.generation) return { result: edge.retry === 'invalid' ? 'invalid' : 'failed', revision, error: edge, ...(wave ? { wave } : {}) };
    const ended = await rollBack(ctx, state, edge);
    const generation = state.generation?.generation ?? nextGeneration;
    await runRepoHooks(ctx, state, 'on-failure', hookEnv(generation, { result: 'failure', error: ended.message }));
    if (ended.retry !== 'stuck' && state.generation) {
      await runRepoHooks(ctx, state, 'on-rollback', hookEnv(generation, { result: 'rolled-back', error: ended.message }));
    }
    return { result: ended.retry === 'stuck' ? 'failed' : 'rolled-back', revision, generation: state.generation?.generation, error: ended, ...(wave ? { wave } : {}) };
  }
  const generation = need(state.generation, 'generation').generation;
  await runRepoHooks(ctx, state, 'post-apply', hookEnv(generation, { result: 'success' }));
  return { result: 'applied', revision, generation, ...(wave ? { wave } : {}) };
}

/**
 * Asks the wave gate about a commit the host does not run yet: undefined when there is no gate (or the commit is
 * live already: drift and secrets runs never wait); `held` when the host must wait or is halted.
 */
async function waveGate(
  ctx: RunContext,
  state: RunState,
  revision: string,
  liveRevision: string | undefined,
  options: ReconcileOptions,
): Promise<{ wave: WaveStatus; held?: { result: RunResult; error: EdgeError } } | undefined> {
  const desired = state.desired;
  if (!ctx.waves || !desired || liveRevision === revision || options.mode === 'report') return undefined;
  if (options.ignoreWaves) {
    ctx.log.warn({ revision }, `applying ${revision.slice(0, 12)} without waiting for the earlier waves (--ignore-waves)`);
    return undefined;
  }
  const verdict = await ctx.waves.check(revision, desired);
  if (!verdict.hold) return { wave: verdict.wave };
  const { result, code, reason } = verdict.hold;
  return { wave: verdict.wave, held: { result, error: new EdgeError(code, reason, { stage: 'plan', retry: 'refused' }) } };
}

/** True when prepare resolved an app to another commit than the live one (a followed branch moved): no drift. */
function newRelease(state: RunState, live: GenerationMeta | undefined): boolean {
  return (state.releases ?? []).some((release) => live?.releases?.find((old) => old.app === release.app)?.sha !== release.sha);
}

/** True when `revision` is the live generation's, rendered from the same inputs, and the host still matches it. */
async function liveIsCurrent(ctx: RunContext, live: GenerationMeta, revision: string): Promise<boolean> {
  if (live.revision !== revision || !live.inputs) return false;
  // Checking a big inventory is hot enough for V8's optimizing compiler to start on it, for nothing (host/short-runs.ts).
  if (live.inventory.length >= MANY) preferShortRuns();
  if (inputsFingerprint(ctx.hostName, live.secretNames ?? [], ctx.secrets) !== live.inputs) return false;
  // Stats first: only files whose stat changed since they last matched are read and hashed.
  const stats = await LiveStats.open(ctx.host, ctx.cacheDir);
  const drifted = await stats.anyDrift(live.inventory);
  if (drifted) return false;
  await stats.save().catch((error: unknown) => ctx.log.warn({ err: String(error) }, 'could not write the live stats cache'));
  // Pinned releases are covered by their links in the inventory; a followed branch must be asked for its head.
  return followedBranchesUnchanged(ctx, live);
}

/** True when every followed branch of the live generation's apps still points at the live commit. */
async function followedBranchesUnchanged(ctx: RunContext, live: GenerationMeta): Promise<boolean> {
  const followed = (live.releases ?? []).filter((release) => release.follow);
  if (followed.length === 0) return true;
  const { resolveAppRevision } = await import('./source/app-source.js');
  const { appMirrorDir } = await import('./stages/prepare.js');
  const store = need(ctx.store, 'state store');
  for (const release of followed) {
    const head = await resolveAppRevision({ app: release.app, repo: release.repo, follow: release.follow }, appMirrorDir(store, release.app), ctx.apps, ctx.signal).catch(() => undefined);
    // An unreachable app repo is no reason to rebuild everything: the live release stays.
    if (head && head.sha !== release.sha) return false;
  }
  return true;
}

async function runRepoHooks(ctx: RunContext, state: RunState, phase: HookPhase, env: HookEnv) {
  const desired = state.desired;
  const host = desired?.hosts.get(ctx.hostName);
  if (!desired || !host || !state.tree) return [];
  const roles = host.roles.map((role) => desired.roles.get(role)).filter((role) => role !== undefined);
  if (!roles.some((role) => role.hooks[phase])) return [];
  await state.materializeTree?.();
  const invocations = hooksFor(phase, roles, state.tree);
  if (invocations.length === 0) return [];
  return runHooks(phase, invocations, env, {
    timeoutMs: ctx.hookTimeoutMs,
    dryRun: ctx.runner?.dryRun ?? true,
    redact: ctx.redact,
    signal: ctx.signal,
    log: (outcome) => ctx.log.info({ hook: { ...outcome } }, `hook ${outcome.phase} ${outcome.role}: exit ${outcome.exitCode}`),
  });
}

async function finish(ctx: RunContext, state: RunState, outcome: PartialOutcome, started: number): Promise<ReconcileOutcome> {
  const durationMs = Math.round(performance.now() - started);
  const store = need(ctx.store, 'state store');
  const failedCheck = state.health?.failed;
  const record: RunRecord = {
    at: new Date().toISOString(),
    result: outcome.result,
    durationMs,
    durations: state.durations,
    ...(outcome.revision ? { revision: outcome.revision } : {}),
    ...(outcome.generation !== undefined ? { generation: outcome.generation } : {}),
    ...(outcome.drift ? { drift: outcome.drift } : {}),
    ...(outcome.error ? { stage: outcome.error.stage, code: outcome.error.code, reason: ctx.redact(outcome.error.message) } : {}),
    ...(failedCheck && outcome.result !== 'applied'
      ? { failedCheck: { name: failedCheck.name, status: failedCheck.status, message: failedCheck.message } }
      : {}),
  };
  const applied = outcome.result === 'applied' && outcome.revision && outcome.generation !== undefined
    ? { revision: outcome.revision, generation: outcome.generation }
    : undefined;
  const apps = await appsAfter(ctx, state, outcome);
  const status = await recordRun(store, ctx.hostName, record, applied, outcome.wave, apps).catch((error: unknown) => {
    ctx.log.error({ err: String(error) }, 'could not write the status document');
    return undefined;
  });
  // Only once the status names the live generation: pruning must never take the one a stale status names.
  if (status) await pruneGenerations(ctx, status).catch((error: unknown) => ctx.log.error({ err: String(error) }, 'could not prune old generations'));
  return { ...outcome, state, durationMs, ...(status?.apps ? { apps: status.apps } : {}) };
}

/** The apps' statuses after a run that may have changed them; undefined (keep them) after a no-op or a wait. */
async function appsAfter(ctx: RunContext, state: RunState, outcome: PartialOutcome): Promise<AppStatus[] | undefined> {
  if (['unchanged', 'pinned', 'suspended', 'outside-window', 'drifted'].includes(outcome.result)) return undefined;
  // Runs that may have changed a release: one that prepared or replaced releases, a refused build, a recovery.
  if (!state.releases && !state.previousGeneration?.releases && outcome.error?.stage !== 'prepare' && !outcome.recovery) return undefined;
  const store = need(ctx.store, 'state store');
  const { appStatuses } = await import('./state/app-status.js');
  return appStatuses(store, await liveGeneration(store, ctx.hostName).catch(() => undefined)).catch(() => undefined);
}
