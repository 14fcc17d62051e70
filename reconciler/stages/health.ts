/**
 * The health stage: the checks of the new generation must pass within the deadline; an unhealthy report
 * becomes an error of class `invalid`, which makes the run roll back.
 */
import { EdgeError } from '../errors.js';
import { runHealthChecks } from '../health.js';
import { need, type RunContext, type RunState } from '../run-context.js';

/** Runs the health checks of the new generation. */
export async function checkHealth(ctx: RunContext, state: RunState): Promise<void> {
  await need(state.transaction, 'transaction').setPhase('health');
  const desired = need(state.desired, 'desired state');
  const host = need(desired.hosts.get(ctx.hostName), 'host');
  const report = await runHealthChecks(need(state.generation, 'generation').health, {
    runner: need(ctx.runner, 'command runner'),
    deadlineMs: desired.edge.health.deadlineSeconds * 1000,
    intervalMs: desired.edge.health.intervalSeconds * 1000,
    standby: host.standby,
    signal: ctx.signal,
    redact: ctx.redact,
  });
  state.health = report;
  if (!report.healthy) {
    const failed = report.failed;
    throw new EdgeError(
      'HEALTH_FAILED',
      `health check ${failed?.name ?? '?'} failed for ${need(state.revision, 'revision').slice(0, 12)}: ${failed?.message ?? 'unhealthy'}`,
      { stage: 'health', retry: 'invalid' },
    );
  }
}
