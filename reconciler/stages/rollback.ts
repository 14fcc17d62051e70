/**
 * Rollback and crash recovery share one path: the transaction is undone from its backups (byte for byte what
 * was live before), the running system is re-activated for exactly the paths that changed back, the previous
 * firewall is restored, and the previous generation's health is checked again. A revision that failed its own
 * activation or health is marked bad, so it is not retried until a newer commit arrives.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { activate, deactivateRemoved, restoreFirewall, type ActivationContext } from '../host/activation.js';
import { EdgeError } from '../errors.js';
import type { InventoryEntry } from '../state/inventory.js';
import { liveGeneration, readStatus } from '../state/status.js';
import { need, type RunContext, type RunState } from '../run-context.js';
import type { GenerationMeta, StateStore } from '../state/state-store.js';
import { Transaction, type JournalOp } from '../state/transaction.js';
import { activationContext } from './apply.js';
import { runGenerationHealth } from './health.js';
import { planActivation } from './plan.js';
import type { FileChange } from '../model.js';

/** The file changes an undo made: the inverse of the ops it reverted. */
function reverseChanges(ops: readonly JournalOp[]): FileChange[] {
  return ops.map((op) => ({
    path: op.path,
    kind: op.kind,
    resource: '',
    sensitive: false,
    reasons: [],
    diff: '',
    action: op.before === null ? 'delete' : op.action === 'delete' ? 'create' : 'update',
  }));
}

/**
 * Undoes a transaction and re-activates what changed back. `before` is the inventory that was live before it,
 * `after` the inventory it was installing.
 */
async function undoAndReactivate(
  transaction: Transaction,
  actx: ActivationContext,
  before: readonly InventoryEntry[],
  after: readonly InventoryEntry[],
): Promise<void> {
  const restored = await transaction.undo();
  // A unit whose file was to be removed was stopped and disabled before any file changed: bring it back even when
  // its file never went (the run ended before that op), or the old generation would run without it.
  const deactivated = transaction.journal.ops.filter((op) => op.action === 'delete' && op.before !== null && !restored.includes(op));
  const activation = planActivation(reverseChanges([...restored, ...deactivated]), before, after);
  await deactivateRemoved(activation, actx);
  await activate({ ...activation, firewall: false }, actx, []);
  if (existsSync(join(actx.workDir, 'ufw-saved', 'restore.sh'))) await restoreFirewall(actx);
  await transaction.commit();
}

async function inventoryOfGeneration(store: StateStore, generation: number | undefined): Promise<GenerationMeta | undefined> {
  return generation === undefined ? undefined : store.readGeneration(generation).catch(() => undefined);
}

/** Rolls a failed run back to what was live before it; returns the error that ends the run. */
export async function rollBack(ctx: RunContext, state: RunState, cause: EdgeError): Promise<EdgeError> {
  const store = need(ctx.store, 'state store');
  const generation = state.generation;
  if (!generation) return cause;
  // The run may have been aborted (SIGTERM, a newer commit): the rollback itself must still run to the end.
  const actx = activationContext({ ...ctx, signal: undefined }, state);
  try {
    if (state.transaction) {
      await undoAndReactivate(state.transaction, actx, state.previous, generation.inventory);
    }
    if (state.previousGeneration && !actx.runner.dryRun) {
      const report = await runGenerationHealth({ ...ctx, signal: undefined }, state.previousGeneration);
      if (!report.healthy) {
        throw new Error(`generation ${state.previousGeneration.generation} is unhealthy after the rollback too: ${report.failed?.name}: ${report.failed?.message}`);
      }
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await store.setResult(generation.generation, 'failed', `rollback failed: ${message}`).catch(() => undefined);
    return new EdgeError('ROLLBACK_FAILED', `rollback of ${generation.revision.slice(0, 12)} failed: ${message}; the host needs a human`, {
      stage: 'rollback',
      retry: 'stuck',
      cause: error,
    });
  }
  await store.setResult(generation.generation, 'rolled-back', cause.message);
  if (cause.retry === 'invalid') {
    // With app releases, the pair (revision, their commits) is what failed: a new app commit is tried again.
    const releases = (generation.releases ?? []).map(({ app, sha, ref }) => ({ app, sha, ...(ref ? { ref } : {}) }));
    await store.markBad({ revision: generation.revision, markedAt: new Date().toISOString(), reason: cause.message, generation: generation.generation, ...(releases.length > 0 ? { releases } : {}) });
  }
  return new EdgeError(cause.code, `${cause.message}; rolled back to ${state.previousGeneration ? `generation ${state.previousGeneration.generation}` : 'the files that were there before'}`, {
    stage: cause.stage,
    retry: cause.retry,
    problems: cause.problems,
    cause,
  });
}

/** What recovery found at startup. */
export interface Recovery {
  generation: number;
  /**
   * `undone`: a journal was left and the host is back on the old generation; `completed`: the crash came after the
   * generation was marked good, the journal is dropped and it is live; `abandoned`: it never touched the host;
   * `recorded`: the status document did not name the live generation yet.
   */
  outcome: 'undone' | 'completed' | 'abandoned' | 'recorded';
}

/**
 * Resolves what a crash left behind, before anything else runs. The generation's result is the commit point:
 * a leftover journal whose generation is good is dropped (the new generation is live), any other is undone; a
 * pending generation without a journal never touched the host (the journal is written before the first change
 * and dropped only after the commit point or a complete undo) and is abandoned. Last, a status document that
 * lags behind the generations is reported, so the run rewrites it.
 */
export async function recoverInterrupted(ctx: RunContext, commands: string[][]): Promise<Recovery | undefined> {
  const store = need(ctx.store, 'state store');
  const transaction = await Transaction.pending(store, ctx.host);
  if (transaction) {
    const { journal } = transaction;
    const after = await inventoryOfGeneration(store, journal.generation);
    if (after?.result === 'good') {
      await transaction.commit();
      return { generation: journal.generation, outcome: 'completed' };
    }
    const before = await inventoryOfGeneration(store, journal.from);
    const state: RunState = { previous: before?.inventory ?? [], commands, durations: {}, revision: journal.revision };
    await undoAndReactivate(transaction, activationContext(ctx, state), before?.inventory ?? [], after?.inventory ?? []);
    if (after) await store.setResult(journal.generation, 'interrupted', `interrupted in ${journal.phase}; undone at startup`);
    return { generation: journal.generation, outcome: 'undone' };
  }
  // Without a journal, backups (copies of env files, so secrets) belong to no transaction: a kill before it began.
  await rm(store.txnDir, { recursive: true, force: true });
  const newest = (await store.generations()).at(-1);
  if (newest !== undefined && (await store.readGeneration(newest)).result === 'pending') {
    await store.setResult(newest, 'interrupted', 'interrupted before any file changed');
    return { generation: newest, outcome: 'abandoned' };
  }
  const live = await liveGeneration(store, ctx.hostName);
  const status = await readStatus(store, ctx.hostName);
  if (live && live.generation !== status.lastApplied?.generation) return { generation: live.generation, outcome: 'recorded' };
  return undefined;
}
