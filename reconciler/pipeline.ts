/**
 * The pipeline: reconciles are an ordered, visible list of named stages with one signature. The first failure
 * stops the run; its error's class (not its message) decides what happens next.
 */
import { performance } from 'node:perf_hooks';
import { EdgeError, type Stage } from './errors.js';
import type { Host } from './host.js';
import type { InventoryEntry } from './inventory.js';
import type { DesiredState } from './model.js';
import type { PathPolicy } from './path-policy.js';
import { loadDesiredState } from './stages/load.js';
import { planHost, type Plan } from './stages/plan.js';
import { renderHost } from './stages/render.js';
import { validateHost } from './stages/validate.js';
import type { SecretSource } from '../renderers/template.js';
import type { RenderedFile } from '../renderers/types.js';

/** What a run is asked to do; fixed for its duration. */
export interface RunContext {
  /** The exported tree of the revision. */
  repoDir: string;
  hostName: string;
  host: Host;
  secrets: SecretSource;
  policy: PathPolicy;
  /** The inventory of the last applied generation (empty on a fresh host). */
  previous: InventoryEntry[];
  signal?: AbortSignal;
}

/** What the stages have produced so far. */
export interface RunState {
  desired?: DesiredState;
  files?: RenderedFile[];
  plan?: Plan;
  /** Milliseconds per stage that ran. */
  durations: Partial<Record<Stage, number>>;
}

/** One named stage. */
export interface StageStep {
  stage: Stage;
  run(ctx: RunContext, state: RunState): Promise<void>;
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`pipeline bug: ${what} is missing`);
  return value;
}

/** load → render → validate → plan: everything up to the point where the host would be touched. */
export const PLAN_PIPELINE: readonly StageStep[] = [
  {
    stage: 'load',
    async run(ctx, state) {
      state.desired = await loadDesiredState(ctx.repoDir);
    },
  },
  {
    stage: 'render',
    async run(ctx, state) {
      state.files = renderHost(need(state.desired, 'desired state'), ctx.hostName, ctx.secrets, ctx.policy).files;
    },
  },
  {
    stage: 'validate',
    async run(ctx, state) {
      await validateHost(need(state.desired, 'desired state'), need(state.files, 'rendered files'), { signal: ctx.signal });
    },
  },
  {
    stage: 'plan',
    async run(ctx, state) {
      state.plan = await planHost(ctx.hostName, need(state.files, 'rendered files'), ctx.host, ctx.previous);
    },
  },
];

/** Runs the stages in order; stops at the first error, which is always an EdgeError naming its stage. */
export async function runStages(steps: readonly StageStep[], ctx: RunContext, state: RunState = { durations: {} }): Promise<RunState> {
  for (const step of steps) {
    ctx.signal?.throwIfAborted();
    const started = performance.now();
    try {
      await step.run(ctx, state);
    } catch (error) {
      if (error instanceof EdgeError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new EdgeError('INTERNAL', `${step.stage} failed unexpectedly: ${message}`, {
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
