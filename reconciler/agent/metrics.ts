/**
 * Prometheus metrics of the agent (`/metrics`): reconciles by result, stage durations, the applied generation
 * and revision, rollbacks, drift and the last success. Labels never carry a secret, a path or a message: only
 * results, stages and revisions.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Stage } from '../errors.js';
import type { RunResult } from '../state/status.js';
import type { AppStatus } from '../state/app-status.js';

/** What one reconcile tells the metrics. */
export interface RunObservation {
  result: RunResult;
  revision?: string;
  generation?: number;
  /** Set when this run applied: the generation that is live now. */
  applied?: { revision: string; generation: number };
  durations: Partial<Record<Stage, number>>;
  durationMs: number;
  /** Managed files found differing from the live generation (report policy), or undefined. */
  drift?: number;
}

/** The agent's metrics registry. */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly reconciles = new Counter({
    name: 'edge_reconciler_reconciles_total',
    help: 'Reconciles by how they ended (applied, unchanged, rolled-back, invalid, refused, ...).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly stageSeconds = new Histogram({
    name: 'edge_reconciler_stage_duration_seconds',
    help: 'Time per pipeline stage.',
    labelNames: ['stage'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly runSeconds = new Histogram({
    name: 'edge_reconciler_reconcile_duration_seconds',
    help: 'Time of a whole reconcile.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly generation = new Gauge({
    name: 'edge_reconciler_applied_generation',
    help: 'The generation that is live on this host.',
    registers: [this.registry],
  });
  private readonly revision = new Gauge({
    name: 'edge_reconciler_applied_revision_info',
    help: 'The revision that is live on this host (value 1).',
    labelNames: ['revision'],
    registers: [this.registry],
  });
  private readonly rollbacks = new Counter({
    name: 'edge_reconciler_rollbacks_total',
    help: 'Automatic rollbacks after a failed activation or health check.',
    registers: [this.registry],
  });
  private readonly drift = new Gauge({
    name: 'edge_reconciler_drift_files',
    help: 'Managed files that differ from the live generation (drift policy report; 0 after a heal).',
    registers: [this.registry],
  });
  private readonly lastSuccess = new Gauge({
    name: 'edge_reconciler_last_success_timestamp_seconds',
    help: 'When a reconcile last ended applied or unchanged.',
    registers: [this.registry],
  });

  private readonly appRelease = new Gauge({
    name: 'edge_reconciler_app_release_info',
    help: 'The live release of each app (value 1): its commit.',
    labelNames: ['app', 'sha'],
    registers: [this.registry],
  });
  private readonly appBuildSeconds = new Gauge({
    name: 'edge_reconciler_app_build_duration_seconds',
    help: 'How long the build of each app\'s live release took.',
    labelNames: ['app'],
    registers: [this.registry],
  });

  /** Sets the apps' live releases (at start, from the status document, and after every run that knows them). */
  setApps(apps: readonly AppStatus[]): void {
    this.appRelease.reset();
    this.appBuildSeconds.reset();
    for (const app of apps) {
      this.appRelease.set({ app: app.app, sha: app.sha }, 1);
      this.appBuildSeconds.set({ app: app.app }, app.buildSeconds);
    }
  }

  private readonly waveWaiting = new Gauge({
    name: 'edge_reconciler_wave_waiting',
    help: '1 while this host waits for an earlier wave to run the new commit, else 0.',
    registers: [this.registry],
  });
  private readonly waveHalted = new Gauge({
    name: 'edge_reconciler_wave_halted',
    help: '1 while a failure (or the wave timeout) in an earlier wave halts this host on its live commit, else 0.',
    registers: [this.registry],
  });
  private readonly forgePosts = new Counter({
    name: 'edge_reconciler_forge_status_posts_total',
    help: 'Posts of commit statuses (and deployments) to the forge, by result (ok, failed); failed ones are retried.',
    labelNames: ['result'],
    registers: [this.registry],
  });

  /** Whether this host waits for an earlier wave, or is halted by one. */
  setWave(state: { waiting: boolean; halted: boolean }): void {
    this.waveWaiting.set(state.waiting ? 1 : 0);
    this.waveHalted.set(state.halted ? 1 : 0);
  }

  /** Counts one post to the forge. */
  countForgePost(ok: boolean): void {
    this.forgePosts.inc({ result: ok ? 'ok' : 'failed' });
  }

  /** Records one reconcile. */
  observe(run: RunObservation): void {
    this.reconciles.inc({ result: run.result });
    this.runSeconds.observe(run.durationMs / 1000);
    for (const [stage, ms] of Object.entries(run.durations)) this.stageSeconds.observe({ stage }, (ms ?? 0) / 1000);
    if (run.result === 'rolled-back') this.rollbacks.inc();
    if (run.result === 'applied' || run.result === 'unchanged') {
      this.lastSuccess.set(Date.now() / 1000);
      this.drift.set(0);
    }
    if (run.drift !== undefined) this.drift.set(run.drift);
    if (run.applied) this.setLive(run.applied);
  }

  /** Sets the live generation (at start, from the status document, and after every apply). */
  setLive(live: { revision: string; generation: number }): void {
    this.generation.set(live.generation);
    this.revision.reset();
    this.revision.set({ revision: live.revision }, 1);
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
