/**
 * The record stage: the new generation passed health. The firewall's dead-man switch is disarmed, the generation
 * is marked good (the commit point: from here on recovery completes the transaction instead of undoing it), and
 * the journal and backups are dropped. (The status document is written, and old generations pruned, by the
 * reconcile loop for every run, whatever its end.)
 */
import { disarmDeadman } from '../host/activation.js';
import { crashPoint } from '../host/crash-points.js';
import { need, type RunContext, type RunState } from '../run-context.js';
import { activationContext } from './apply.js';
import { DEFAULT_KEEP_RELEASES } from '../../renderers/app/render.js';

/** How many generations a host keeps by default. */
export const DEFAULT_KEEP_GENERATIONS = 10;

/** Makes the new generation final. */
export async function recordGood(ctx: RunContext, state: RunState): Promise<void> {
  const store = need(ctx.store, 'state store');
  const generation = need(state.generation, 'generation');
  if (need(state.plan, 'plan').activation.firewall) await disarmDeadman(activationContext(ctx, state));
  // The result is the commit point: a crash before it leaves a journal to undo, after it a journal to drop.
  await store.setResult(generation.generation, 'good');
  crashPoint('record:good');
  await need(state.transaction, 'transaction').commit();
  crashPoint('record:committed');
  await pruneAppReleases(ctx, state);
}

/**
 * After a good record: each app keeps its newest `keep` releases, never the live one nor the one the previous
 * generation ran (the newest good one before it). A failure to prune is logged, never a failed run.
 */
async function pruneAppReleases(ctx: RunContext, state: RunState): Promise<void> {
  const releases = state.generation?.releases ?? [];
  if (releases.length === 0) return;
  const { pruneReleases } = await import('../host/release-dirs.js');
  const keepOf = new Map((state.files ?? []).flatMap((file) => (file.app ? [[file.app.name, file.app.keep] as const] : [])));
  for (const release of releases) {
    const before = state.previousGeneration?.releases?.find((previous) => previous.app === release.app)?.sha;
    const protect = new Set([release.sha, ...(before ? [before] : [])]);
    try {
      const removed = await pruneReleases(ctx.host, release.app, keepOf.get(release.app) ?? DEFAULT_KEEP_RELEASES, protect);
      if (removed.length > 0) ctx.log.info({ appName: release.app, removed }, `app ${release.app}: removed ${removed.length} old release(s)`);
    } catch (error) {
      ctx.log.warn({ appName: release.app, err: String(error) }, `app ${release.app}: could not prune old releases`);
    }
  }
}
