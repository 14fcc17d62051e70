/**
 * The health stage: the checks of the new generation must pass within the deadline; an unhealthy report
 * becomes an error of class `invalid`, which makes the run roll back.
 */
import { crashPoint } from '../host/crash-points.js';
import { EdgeError } from '../errors.js';
import { runHealthChecks, type HealthReport } from '../host/health.js';
import type { GenerationMeta } from '../state/state-store.js';
import { need, type RunContext, type RunState } from '../run-context.js';

/** Runs a generation's own health checks with its own policy. */
export function runGenerationHealth(ctx: RunContext, generation: GenerationMeta): Promise<HealthReport> {
  const { deadlineSeconds, intervalSeconds, standby } = generation.healthPolicy;
  return runHealthChecks(generation.health, {
    runner: need(ctx.runner, 'command runner'),
    deadlineMs: deadlineSeconds * 1000,
    intervalMs: intervalSeconds * 1000,
    standby,
    signal: ctx.signal,
    redact: ctx.redact,
  });
}

/** Runs the health checks of the new generation. */
export async function checkHealth(ctx: RunContext, state: RunState): Promise<void> {
  await need(state.transaction, 'transaction').setPhase('health');
  const report = await runGenerationHealth(ctx, need(state.generation, 'generation'));
  state.health = report;
  crashPoint('health:checked');
  if (report.cancelled) {
    throw new EdgeError('SUPERSEDED', `the health wait for ${need(state.revision, 'revision').slice(0, 12)} was cancelled before health passed (the daemon is stopping, or the run was cancelled)`, {
      stage: 'health',
      retry: 'transient',
    });
  }
  if (!report.healthy) {
    const failed = report.failed;
    throw new EdgeError(
      'HEALTH_FAILED',
      `health check ${failed?.name ?? '?'} failed for ${need(state.revision, 'revision').slice(0, 12)}: ${failed?.message ?? 'unhealthy'}`,
      { stage: 'health', retry: 'invalid' },
    );
  }
}
