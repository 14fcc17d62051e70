/**
 * The fetch stage: resolves the revision to apply, exports its tree into a clean staging dir under the state
 * dir (see git.ts for the kinds of source), then refuses it unless it is trusted: signed when signatures are
 * required, and a descendant of the last applied revision unless rewinds are allowed (see trust.ts).
 */
import { join } from 'node:path';
import { exportRevision } from '../source/git.js';
import { need, type RunContext, type RunState } from '../run-context.js';
import { readStatus } from '../state/status.js';
import { checkTrust } from '../source/trust.js';

/** Sets `state.tree` and `state.revision`, then checks trust; a refused revision throws after both are set. */
export async function fetchRevision(ctx: RunContext, state: RunState): Promise<void> {
  const store = need(ctx.store, 'state store');
  const source = need(ctx.source, 'source');
  const exported = await exportRevision({
    repo: source.repo,
    ref: source.ref,
    tagPattern: source.tagPattern,
    auth: source.auth,
    timeoutMs: source.timeoutMs,
    signal: ctx.signal,
    mirrorDir: join(store.dir, 'repo.git'),
    stagingParent: join(store.dir, 'staging'),
    skipExport: state.reuseLive,
  });
  state.tree = exported.dir;
  state.treeFiles = exported.files;
  state.materializeTree = exported.materialize;
  state.reused = !exported.exported;
  state.revision = exported.revision;
  // reconcile() reads the live generation before fetch; the status document covers an unreadable generation.
  const lastApplied = state.previousGeneration?.revision ?? (await readStatus(store, ctx.hostName)).lastApplied?.revision;
  const verdict = await checkTrust(exported, {
    requireSignatures: source.trust?.requireSignatures ?? false,
    allowedSignersFile: source.trust?.allowedSignersFile,
    gpgHome: source.trust?.gpgHome,
    allowRewinds: source.trust?.allowRewinds ?? false,
    lastApplied,
  });
  const fields = { revision: exported.revision, ref: exported.ref, ...(verdict.signer ? { signer: verdict.signer } : {}) };
  if (verdict.rewound) ctx.log.warn({ ...fields, lastApplied }, `revision ${exported.revision.slice(0, 12)} rewinds the host (trust.allowRewinds)`);
  else ctx.log.info(fields, `fetched ${exported.ref ?? 'the source'} at ${exported.revision.slice(0, 12)}`);
}
