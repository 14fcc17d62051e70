/**
 * The fetch stage: resolves the revision to apply, refuses it unless it is trusted (signed when signatures are
 * required, and a descendant of the last applied revision unless rewinds are allowed: see trust.ts) before a byte
 * of its tree is read, then exports the tree, within its size caps, into a clean staging dir under the state dir
 * (see git.ts for the kinds of source).
 */
import { join } from 'node:path';
import { exportRevision, type ResolvedRevision } from '../source/git.js';
import { need, type RunContext, type RunState } from '../run-context.js';
import { readStatus } from '../state/status.js';
import { checkTrust, type TrustVerdict } from '../source/trust.js';

/** Sets `state.revision` as soon as it is resolved (a refused revision throws after that), then `state.tree`. */
export async function fetchRevision(ctx: RunContext, state: RunState): Promise<void> {
  const store = need(ctx.store, 'state store');
  const source = need(ctx.source, 'source');
  let verdict: TrustVerdict = { rewound: false, skipped: true };
  let lastApplied: string | undefined;
  const trust = async (resolved: ResolvedRevision) => {
    state.revision = resolved.revision;
    // reconcile() reads the live generation before fetch; the status document covers an unreadable generation.
    lastApplied = state.previousGeneration?.revision ?? (await readStatus(store, ctx.hostName)).lastApplied?.revision;
    verdict = await checkTrust(resolved, {
      requireSignatures: source.trust?.requireSignatures ?? false,
      allowedSignersFile: source.trust?.allowedSignersFile,
      gpgHome: source.trust?.gpgHome,
      allowRewinds: source.trust?.allowRewinds ?? false,
      lastApplied,
    });
  };
  const exported = await exportRevision({
    repo: source.repo,
    ref: source.ref,
    tagPattern: source.tagPattern,
    ...(source.path ? { path: source.path } : {}),
    auth: source.auth,
    timeoutMs: source.timeoutMs,
    limits: source.limits,
    signal: ctx.signal,
    mirrorDir: join(store.dir, 'repo.git'),
    stagingParent: join(store.dir, 'staging'),
    beforeRead: trust,
    skipExport: state.reuseLive,
  });
  state.tree = exported.dir;
  state.treeFiles = exported.files;
  state.materializeTree = exported.materialize;
  state.reused = !exported.exported;
  state.revision = exported.revision;
  const fields = { revision: exported.revision, ref: exported.ref, ...(verdict.signer ? { signer: verdict.signer } : {}) };
  if (verdict.rewound) ctx.log.warn({ ...fields, lastApplied }, `revision ${exported.revision.slice(0, 12)} rewinds the host (trust.allowRewinds)`);
  else ctx.log.info(fields, `fetched ${exported.ref ?? 'the source'} at ${exported.revision.slice(0, 12)}`);
}
