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
}
