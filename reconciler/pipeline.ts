/**
 * The pipeline: reconciles are an ordered, visible list of named stages with one signature. The first failure
 * stops the run; its error's class (not its message) decides what happens next.
 */
import { performance } from 'node:perf_hooks';
import { EdgeError } from './errors.js';
import { HostPathError } from './host/host.js';
import { need, type RunContext, type RunState, type StageStep } from './run-context.js';
import { activateChanges } from './stages/activate.js';
import { applyChanges } from './stages/apply.js';
import { fetchRevision } from './stages/fetch.js';
import { checkHealth } from './stages/health.js';
import { recordGood } from './stages/record.js';

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
    async run(_ctx, state) {
      const { loadDesiredState } = await import('./stages/load.js');
      state.desired = await loadDesiredState(need(state.tree, 'exported tree'), state.treeFiles);
    },
  },
  {
    stage: 'render',
    async run(ctx, state) {
      const { renderHost } = await import('./stages/render.js');
      state.files = renderHost(need(state.desired, 'desired state'), ctx.hostName, ctx.secrets, ctx.policy).files;
    },
  },
  {
    stage: 'validate',
    async run(ctx, state) {
      const { validateHost } = await import('./stages/validate.js');
      await validateHost(need(state.desired, 'desired state'), need(state.files, 'rendered files'), {
        signal: ctx.signal,
        previous: state.previous,
        redact: ctx.redact,
      });
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
      state.plan = await planHost(ctx.hostName, files, ctx.host, state.previous);
      if (state.notes && state.notes.length > 0) state.plan.notes = state.notes;
      // A manual rollback restores rules that were live before: it has no desired state and is not judged.
      if (state.desired) await checkFirewallLockout(files, state.desired.edge.guards, ctx.host, state.plan);
    },
  },
];

/** apply → activate → health → record: the host changes; a failure in any of them rolls back. */
export const APPLY_PIPELINE: readonly StageStep[] = [
  { stage: 'apply', run: applyChanges },
  { stage: 'activate', run: activateChanges },
  { stage: 'health', run: checkHealth },
  { stage: 'record', run: recordGood },
];

/** Runs the stages in order; stops at the first error, which is always an EdgeError naming its stage. */
export async function runStages(steps: readonly StageStep[], ctx: RunContext, state: RunState): Promise<RunState> {
  for (const step of steps) {
    ctx.signal?.throwIfAborted();
    const started = performance.now();
    try {
      await step.run(ctx, state);
    } catch (error) {
      if (error instanceof HostPathError && error.stage !== step.stage) throw error.inStage(step.stage);
      if (error instanceof EdgeError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new EdgeError('INTERNAL', `${step.stage} failed unexpectedly: ${ctx.redact(message)}`, {
        stage: step.stage,
        retry: 'transient',
        cause: error,
      });
    } finally {
      state.durations[step.stage] = Math.round((performance.now() - started) * 100) / 100;
    }
  }
  return state;
}
