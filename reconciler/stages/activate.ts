/**
 * The activate stage: the running system follows the new files, doing only what the plan says changed.
 */
import { activate, firewallLines } from '../host/activation.js';
import { need, type RunContext, type RunState } from '../run-context.js';
import { activationContext } from './apply.js';

/** Runs the plan's activation; the journal moves to `activate` first so status shows where a crash happened. */
export async function activateChanges(ctx: RunContext, state: RunState): Promise<void> {
  const transaction = need(state.transaction, 'transaction');
  await transaction.setPhase('activate');
  const rules = need(state.files, 'rendered files')
    .filter((file) => file.kind === 'ufw')
    .flatMap((file) => firewallLines(file.content));
  await activate(need(state.plan, 'plan').activation, activationContext(ctx, state), rules);
}
