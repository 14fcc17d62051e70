/**
 * The apply stage: stores the new generation (content of every file, so a rollback needs no git), starts the
 * journaled transaction, stops and disables units whose files go away, then writes and removes files, each
 * atomically. Files that exist but were never managed are not overwritten unless the repo adopts them.
 */
import { EdgeError } from '../errors.js';
import { deactivateRemoved, type ActivationContext } from '../host/activation.js';
import { crashPoint } from '../host/crash-points.js';
import { SymlinkRefusedError } from '../host/host.js';
import { inventoryOf, type ManagedFile } from '../state/inventory.js';
import { inputsFingerprint } from '../source/inputs.js';
import { need, type RunContext, type RunState } from '../run-context.js';
import { CopyStats } from '../state/copy-stats.js';
import type { GenerationMeta } from '../state/state-store.js';
import { Transaction } from '../state/transaction.js';
import type { RenderedFile } from '../../renderers/types.js';

/** The part of a rendered file a generation keeps. */
export function toManagedFile(file: RenderedFile): ManagedFile {
  const { path, kind, resource, mode, owner, group, sensitive, unit, onChange, content, link } = file;
  return { path, kind, resource, mode, owner, group, sensitive, content, ...(unit ? { unit } : {}), ...(onChange ? { onChange } : {}), ...(link ? { link } : {}) };
}

/** The context activation runs with, shared by apply, activate and rollback. */
export function activationContext(ctx: RunContext, state: RunState): ActivationContext {
  const store = need(ctx.store, 'state store');
  return {
    runner: need(ctx.runner, 'command runner'),
    host: ctx.host,
    revision: state.revision ?? 'unknown',
    workDir: store.txnDir,
    deadmanSeconds: ctx.deadmanSeconds ?? 120,
    redact: ctx.redact,
    signal: ctx.signal,
    log: state.commands,
  };
}

/** Refuses to overwrite a file that exists but no generation ever managed, unless its resource adopts it. */
function refuseUnmanaged(state: RunState, files: readonly RenderedFile[]): void {
  const plan = need(state.plan, 'plan');
  const managed = new Set(state.previous.map((entry) => entry.path));
  const adopted = new Set(files.filter((file) => file.adopt).map((file) => file.path));
  const foreign = plan.changes.filter(
    (change) => change.action === 'update' && !managed.has(change.path) && !adopted.has(change.path),
  );
  if (foreign.length === 0) return;
  throw new EdgeError(
    'FILE_UNMANAGED',
    `refusing to overwrite ${foreign.map((change) => change.path).join(', ')}: it exists but was never managed; ` +
      'set adopt: true on its resource to take it over (it is backed up first)',
    {
      stage: 'apply',
      retry: 'invalid',
      problems: foreign.map((change) => ({ code: 'FILE_UNMANAGED', file: change.path, message: `${change.path} exists and is not managed (adopt: true takes it over)` })),
    },
  );
}

/** The fingerprint that lets the next no-op skip rendering (not for restored generations: no repo behind them). */
function inputsOf(ctx: RunContext, files: readonly RenderedFile[]): Pick<GenerationMeta, 'inputs' | 'secretNames'> {
  const secretNames = [...new Set(files.flatMap((file) => file.secrets))].sort();
  return { inputs: inputsFingerprint(ctx.hostName, secretNames, ctx.secrets), secretNames };
}

/** Refuses targets whose directories are symlinks on the host: a way out of the allowed roots. */
async function refuseSymlinks(ctx: RunContext, paths: readonly string[]): Promise<void> {
  // The check is of a path's parent directories: one path per directory answers for all of them.
  const seen = new Set<string>();
  for (const path of paths) {
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (seen.has(dir)) continue;
    seen.add(dir);
    try {
      await ctx.host.checkNoSymlinks(path);
    } catch (error) {
      if (!(error instanceof SymlinkRefusedError)) throw error;
      throw new EdgeError('PATH_SYMLINK', `refusing to write ${path}: ${error.message}`, {
        stage: 'apply',
        retry: 'invalid',
        problems: [{ code: 'PATH_SYMLINK', file: path, message: error.message }],
      });
    }
  }
}

/**
 * Refuses when something other than a file stands at a path to write or remove (a directory, a symlink, a
 * device): someone put it there by hand, and only a human can say what it is for. Nothing is stored or changed.
 */
async function refuseOddObjects(ctx: RunContext, paths: readonly string[], links: ReadonlySet<string>): Promise<void> {
  const odd: { path: string; type: string }[] = [];
  for (const path of paths) {
    const live = await ctx.host.read(path);
    // A managed link (an app's `current`) is replaced only when a link stands there.
    if (live && live.type !== (links.has(path) ? 'symlink' : 'file')) odd.push({ path, type: live.type });
  }
  if (odd.length === 0) return;
  const what = odd.map(({ path, type }) => `${path} is a ${type}`).join(', ');
  throw new EdgeError('PATH_NOT_FILE', `refusing to apply: ${what}, where a managed file belongs; move it away by hand, then run again`, {
    stage: 'apply',
    retry: 'stuck',
    problems: odd.map(({ path, type }) => ({ code: 'PATH_NOT_FILE', file: path, message: `${path} is a ${type}, not a file; move it away by hand` })),
  });
}

/** Runs the apply stage. */
export async function applyChanges(ctx: RunContext, state: RunState): Promise<void> {
  const store = need(ctx.store, 'state store');
  const files = need(state.files, 'rendered files');
  const plan = need(state.plan, 'plan');
  refuseUnmanaged(state, files);
  const changedPaths = plan.changes.filter((change) => change.action !== 'unchanged').map((change) => change.path);
  await refuseSymlinks(ctx, plan.changes.map((change) => change.path));
  const links = new Set([...files.filter((file) => file.link).map((file) => file.path), ...state.previous.filter((entry) => entry.link).map((entry) => entry.path)]);
  await refuseOddObjects(ctx, changedPaths, links);
  const copies = await CopyStats.open(ctx.cacheDir);
  state.generation = await store.createGeneration(
    {
      revision: need(state.revision, 'revision'),
      host: ctx.hostName,
      createdAt: new Date().toISOString(),
      result: 'pending',
      inventory: inventoryOf(files),
      ...healthOf(state),
      ...(state.restoring ? { restoredFrom: state.restoring.generation } : inputsOf(ctx, files)),
      ...releasesOf(state),
    },
    files.map(toManagedFile),
    state.previousGeneration,
    copies,
  );
  await copies.save().catch((error: unknown) => ctx.log.warn({ err: String(error) }, 'could not write the stored copies\' stats'));
  crashPoint('apply:generation');
  const byPath = new Map(files.map((file) => [file.path, file]));
  const changed = plan.changes.filter((change) => change.action !== 'unchanged');
  const writes = changed.filter((change) => change.action !== 'delete').map((change) => toManagedFile(need(byPath.get(change.path), change.path)));
  const deletes = changed.filter((change) => change.action === 'delete').map(({ path, kind }) => ({ path, kind, ...(links.has(path) ? { link: true } : {}) }));
  state.transaction = await Transaction.begin(
    store,
    ctx.host,
    { generation: state.generation.generation, revision: state.generation.revision, from: state.previousGeneration?.generation },
    writes,
    deletes,
  );
  await deactivateRemoved(plan.activation, activationContext(ctx, state));
  await state.transaction.applyFiles((path) => need(byPath.get(path), path).content);
  crashPoint('apply:done');
}

/** The app releases the generation puts live (a restored generation keeps the ones it had). */
function releasesOf(state: RunState): Pick<GenerationMeta, 'releases'> {
  const releases = state.restoring ? state.restoring.releases : state.releases;
  return releases && releases.length > 0 ? { releases } : {};
}

/** The health checks of the host being applied (its roles' checks, then its own) and how they run. */
function healthOf(state: RunState): Pick<GenerationMeta, 'health' | 'healthPolicy'> {
  if (state.restoring) return { health: state.restoring.health, healthPolicy: state.restoring.healthPolicy };
  const desired = need(state.desired, 'desired state');
  const host = need(desired.hosts.get(need(state.plan, 'plan').host), 'host');
  return {
    health: [...host.roles.flatMap((role) => desired.roles.get(role)?.health ?? []), ...host.health],
    healthPolicy: { ...desired.edge.health, standby: host.standby },
  };
}
