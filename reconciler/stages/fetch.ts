/**
 * The fetch stage: resolves the revision to apply and exports its tree into a clean staging dir under the
 * state dir (see git.ts for the kinds of source).
 */
import { join } from 'node:path';
import { exportRevision } from '../git.js';
import { need, type RunContext, type RunState } from '../run-context.js';

/** Sets `state.tree` and `state.revision`. */
export async function fetchRevision(ctx: RunContext, state: RunState): Promise<void> {
  const store = need(ctx.store, 'state store');
  const source = need(ctx.source, 'source');
  const exported = await exportRevision({
    repo: source.repo,
    ref: source.ref,
    mirrorDir: join(store.dir, 'repo.git'),
    stagingParent: join(store.dir, 'staging'),
  });
  state.tree = exported.dir;
  state.revision = exported.revision;
}
