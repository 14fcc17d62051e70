/**
 * The record stage: the new generation passed health. The firewall's dead-man switch is disarmed, the journal
 * and backups are dropped, the generation is marked good and old generations are pruned. (The status document
 * is written by the reconcile loop for every run, whatever its end.)
 */
import { disarmDeadman } from '../host/activation.js';
import { crashPoint } from '../host/crash-points.js';
import { need, type RunContext, type RunState } from '../run-context.js';
import { activationContext } from './apply.js';

/** How many generations a host keeps by default. */
export const DEFAULT_KEEP_GENERATIONS = 10;

/** Makes the new generation final. */
export async function recordGood(ctx: RunContext, state: RunState): Promise<void> {
  const store = need(ctx.store, 'state store');
  const generation = need(state.generation, 'generation');
  if (need(state.plan, 'plan').activation.firewall) await disarmDeadman(activationContext(ctx, state));
  // Journal first: a crash between the two leaves a pending generation whose files are all live, which
  // recovery marks good; the other order would undo a finished apply.
  await need(state.transaction, 'transaction').commit();
  crashPoint('record:committed');
  await store.setResult(generation.generation, 'good');
  await store.prune(ctx.keepGenerations ?? DEFAULT_KEEP_GENERATIONS);
}
