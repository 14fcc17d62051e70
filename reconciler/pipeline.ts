/**
 * The pipeline: reconciles are an ordered, visible list of named stages with one signature. The first failure
 * stops the run; its error's class (not its message) decides what happens next.
 */
import { performance } from 'node:perf_hooks';
import { EdgeError } from './errors.js';
import { HostPathError } from './host/host.js';
import { preferShortRuns } from './host/short-runs.js';
import { logAt, need, type RunContext, type RunState, type StageStep } from './run-context.js';
import { activateChanges } from './stages/activate.js';
import { applyChanges } from './stages/apply.js';
import { fetchRevision } from './stages/fetch.js';
import { checkHealth } from './stages/health.js';
import { recordGood } from './stages/record.js';
import type { Caches } from './cache/caches.js';
import type { LiveStats } from './state/live-stats.js';
import { contentHash, type InventoryEntry } from './state/inventory.js';
import type { RenderedFile } from '../renderers/types.js';

/** fetch: resolve the revision and export its tree. */
export const FETCH: StageStep = { stage: 'fetch', run: fetchRevision };

/**
 * load → render → validate → prepare → plan: everything up to the point where the host would be touched. Their modules (the
 * YAML parser, JSON Schemas, handlebars, the validators, diff) load on first use: a no-op of a live revision, what
 * a timer-driven `apply` mostly is, never needs them.
 */
export const PLAN_PIPELINE: readonly StageStep[] = [
  {
    stage: 'load',
    async run(ctx, state) {
      preferShortRuns();
      const { loadDesiredState } = await import('./stages/load.js');
      const caches = await cachesOf(ctx, state);
      // Schemas as ajv standalone code (the executable's own, else cached): compiled at most once per engine and schema set.
      const schemas = await caches?.repoValidators();
      if (schemas) logAt(ctx.log, 'debug', { stage: 'load', schemaCode: schemas.origin }, `repo files are checked by ${schemas.origin} schema code`);
      state.desired = await loadDesiredState(need(state.tree, 'exported tree'), state.treeFiles, {
        cache: caches?.yaml,
        scans: caches?.scans,
        ...(schemas ? { validators: () => schemas.validators } : {}),
      });
    },
  },
  {
    stage: 'render',
    async run(ctx, state) {
      const { renderHost } = await import('./stages/render.js');
      const cache = (await cachesOf(ctx, state))?.render;
      state.files = renderHost(need(state.desired, 'desired state'), ctx.hostName, ctx.secrets, ctx.policy, { cache }).files;
    },
  },
  {
    stage: 'validate',
    async run(ctx, state) {
      const { validateHost } = await import('./stages/validate.js');
      try {
        await validateHost(need(state.desired, 'desired state'), need(state.files, 'rendered files'), {
          signal: ctx.signal,
          previous: state.previous,
          redact: ctx.redact,
          verdicts: (await cachesOf(ctx, state))?.verdicts,
          ...(state.cleanups ? { defer: (cleanup: () => Promise<void>) => state.cleanups?.push(cleanup) } : {}),
        });
      } finally {
        await saveCaches(ctx, state);
      }
    },
  },
  {
    stage: 'prepare',
    async run(ctx, state) {
      // Only hosts with app releases load the app machinery (git mirrors, builds).
      if (!need(state.files, 'rendered files').some((file) => file.app)) return;
      const { prepareReleases } = await import('./stages/prepare.js');
      await prepareReleases(ctx, state);
    },
  },
  {
    stage: 'plan',
    async run(ctx, state) {
      const files = need(state.files, 'rendered files');
      const { checkFirewallLockout, planHost } = await import('./stages/plan.js');
      const { LiveStats } = await import('./state/live-stats.js');
      const stats = await LiveStats.open(ctx.host, ctx.cacheDir);
      state.plan = await planHost(ctx.hostName, files, ctx.host, state.previous, { knownUnchanged: unchangedSinceLive(state.previous, stats) });
      await stats.save().catch((error: unknown) => ctx.log.warn({ err: String(error) }, 'could not write the live stats cache'));
      if (state.notes && state.notes.length > 0) state.plan.notes = state.notes;
      // A manual rollback restores rules that were live before: it has no desired state and is not judged.
      if (state.desired) await checkFirewallLockout(files, state.desired.edge.guards, ctx.host, state.plan);
    },
  },
];

/**
 * A rendered file is unchanged when the live generation lists the same bytes, mode and owner at its path and the
 * file still matches that entry: by its recorded stat alone (state/live-stats.ts), or else read and hashed once.
 */
function unchangedSinceLive(previous: readonly InventoryEntry[], stats: LiveStats): (file: RenderedFile) => Promise<boolean> {
  const byPath = new Map(previous.map((entry) => [entry.path, entry]));
  return async (file) => {
    const entry = byPath.get(file.path);
    if (!entry || entry.kind !== file.kind || entry.mode !== file.mode || entry.owner !== file.owner || entry.group !== file.group) return false;
    if (entry.sha256 !== contentHash(file)) return false;
    // Stat unchanged since it last matched; else read and compared once (and its stat recorded when it matches).
    return (await stats.unchanged(entry)) || stats.verify(entry);
  };
}

/** The run's caches, opened on first use when the context names a cache dir (a no-op never opens them). */
async function cachesOf(ctx: RunContext, state: RunState): Promise<Caches | undefined> {
  if (!ctx.cacheDir) return undefined;
  if (!state.caches) {
    const { openCaches } = await import('./cache/caches.js');
    state.caches = await openCaches(ctx.cacheDir);
  }
  return state.caches;
}

/** Writes what the plan stages added to the caches; a cache that cannot be written is logged, never a failure. */
async function saveCaches(ctx: RunContext, state: RunState): Promise<void> {
  const error = await state.caches?.save();
  if (error) ctx.log.warn({ err: ctx.redact(error.message) }, `could not write the caches in ${ctx.cacheDir ?? ''}`);
}

/** apply → activate → health → record: the host changes; a failure in any of them rolls back. */
export const APPLY_PIPELINE: readonly StageStep[] = [
  { stage: 'apply', run: applyChanges },
  { stage: 'activate', run: activateChanges },
  { stage: 'health', run: checkHealth },
  { stage: 'record', run: recordGood },
];

/**
 * Runs the stages in order; stops at the first error, which is always an EdgeError naming its stage. Each stage
 * logs one line with its duration and the agent's CPU time in it (debug when it passed; warning when it refused, error when it failed).
 */
export async function runStages(steps: readonly StageStep[], ctx: RunContext, state: RunState): Promise<RunState> {
  for (const step of steps) {
    ctx.signal?.throwIfAborted();
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    let failure: EdgeError | undefined;
    try {
      await step.run(ctx, state);
    } catch (error) {
      failure = stageError(error, step, ctx);
      throw failure;
    } finally {
      const durationMs = Math.round((performance.now() - started) * 100) / 100;
      state.durations[step.stage] = durationMs;
      const cpu = process.cpuUsage(cpuBefore);
      logStage(ctx, state, step.stage, durationMs, Math.round((cpu.user + cpu.system) / 10) / 100, failure);
    }
  }
  return state;
}

function stageError(error: unknown, step: StageStep, ctx: RunContext): EdgeError {
  if (error instanceof HostPathError && error.stage !== step.stage) return error.inStage(step.stage);
  if (error instanceof EdgeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new EdgeError('INTERNAL', `${step.stage} failed unexpectedly: ${ctx.redact(message)}`, {
    stage: step.stage,
    retry: 'transient',
    cause: error,
  });
}

/** The stage's line: the fields docs/logs.md names (revision and generation once known). */
function logStage(ctx: RunContext, state: RunState, stage: string, durationMs: number, cpuMs: number, failure: EdgeError | undefined): void {
  const fields = {
    stage,
    durationMs,
    cpuMs,
    result: failure ? (failure.retry === 'refused' ? 'refused' : 'failed') : 'ok',
    ...(state.revision ? { revision: state.revision } : {}),
    ...(state.generation ? { generation: state.generation.generation } : {}),
    ...(failure ? { code: failure.code } : {}),
  };
  if (!failure) logAt(ctx.log, 'debug', fields, `stage ${stage} ok in ${durationMs} ms`);
  // The message itself is the run's to say (its last line, or the command's error output): said once.
  else logAt(ctx.log, failure.retry === 'refused' ? 'warn' : 'error', fields, `stage ${stage} ${fields.result} after ${durationMs} ms [${failure.code}]`);
}
