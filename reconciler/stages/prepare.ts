/**
 * The prepare stage, between validate and plan: every app release the host needs is made ready before anything live
 * changes. Each app's revision is resolved into its bare mirror in the state dir (`<state>/apps/<app>.git`; only
 * what is needed is fetched), exported (`git archive`) into a hidden work dir under `/srv/apps/<app>/releases/`,
 * its shared dirs linked in, built confined as the app's user, made root's (read-only for the app), marked complete
 * and renamed to `releases/<sha>`. A release already built for the same commit and build spec is reused. The
 * `current` link of each app (rendered by renderers/app) then names its release, and plan compares it like a file.
 * A failing or timed-out build is APP_BUILD_FAILED (invalid): nothing live changed. Without a state dir (`plan`
 * without `--state-dir`) nothing is fetched: a tag or branch shows unresolved.
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EdgeError } from '../errors.js';
import { canUseSystemdRun, lastLines, runBuild } from '../host/app-build.js';
import { lookupUser, sandboxBuildIds, systemUserArgv } from '../host/app-users.js';
import { crashPoint } from '../host/crash-points.js';
import { appDir, chownTree, completeRelease, ensureAppDirs, linkShared, newReleaseWorkDir, readMarker, removeReleaseLeftovers, removeWorkDir, type ReleaseMarker } from '../host/release-dirs.js';
import { SANDBOX_ID } from '../host/sandbox.js';
import { logAt, need, type RunContext, type RunState } from '../run-context.js';
import { resolveAppRevision } from '../source/app-source.js';
import { archive } from '../source/git-tree.js';
import type { AppRelease, StateStore } from '../state/state-store.js';
import { releaseLink } from '../../renderers/app/render.js';
import type { AppIntent, RenderedFile } from '../../renderers/types.js';

/** A build that failed, remembered so the same (desired-state revision, commit, build spec) is not built again. */
interface BuildFailure {
  revision: string;
  sha: string;
  spec: string;
  reason: string;
  at: string;
}

/** The bare mirror of an app's repo. */
export function appMirrorDir(store: StateStore, app: string): string {
  return join(store.dir, 'apps', `${app}.git`);
}

/** Where a failed build of an app is remembered. */
export function buildFailurePath(store: StateStore, app: string): string {
  return join(store.dir, 'apps', `${app}.build-failed.json`);
}

/** The hash of what makes a build: another command, env, network or set of shared dirs builds again. */
export function buildSpecHash(app: AppIntent): string {
  return createHash('sha256').update(JSON.stringify({ build: app.build ?? null, shared: app.shared })).digest('hex').slice(0, 16);
}

/** Runs the prepare stage. */
export async function prepareReleases(ctx: RunContext, state: RunState): Promise<void> {
  const files = need(state.files, 'rendered files').filter((file): file is RenderedFile & { app: AppIntent } => file.link === true && file.app !== undefined);
  delete state.releases;
  if (files.length === 0) return;
  state.notes = [];
  // Rendered files are never changed in place (their content hashes are memoized): a resolved link is a new file.
  const targets = new Map<RenderedFile, string>();
  const relink = () => (state.files = need(state.files, 'rendered files').map((file) => (targets.has(file) ? { ...file, content: targets.get(file) as string } : file)));
  if (!ctx.store) {
    for (const file of files) {
      const { app } = file;
      const what = app.rev ? `commit ${app.rev.slice(0, 12)}` : app.tag ? `tag ${app.tag}` : `branch ${app.follow ?? ''}`;
      targets.set(file, app.rev ? releaseLink(app.rev) : `releases/(${what}, resolved when applied)`);
      state.notes.push(`app ${app.name}: ${what} of ${app.repo} is fetched and built when applied`);
      if (ctx.host.root === '/' && !(await lookupUser(app.user))) state.notes.push(`app ${app.name}: user ${app.user} does not exist; apply creates it as a system user`);
    }
    relink();
    return;
  }
  const store = ctx.store;
  const resolved: { file: RenderedFile & { app: AppIntent }; sha: string; ref?: string }[] = [];
  for (const file of files) {
    const { app } = file;
    // A pinned commit names itself: no git at all when it is known, built for this spec, on the host.
    if (app.rev) {
      resolved.push({ file, sha: app.rev });
      continue;
    }
    const spec = { app: app.name, repo: app.repo, ...(app.tag ? { tag: app.tag } : {}), ...(app.follow ? { follow: app.follow } : {}) };
    resolved.push({ file, ...(await resolveAppRevision(spec, appMirrorDir(store, app.name), ctx.apps, ctx.signal)) });
  }
  await refuseBadReleases(store, need(state.revision, 'revision'), resolved.map(({ file, sha }) => ({ app: file.app.name, sha })));
  const releases: AppRelease[] = [];
  for (const { file, sha, ref } of resolved) {
    const release = await readyRelease(ctx, state, file.app, sha, ref);
    targets.set(file, releaseLink(sha));
    releases.push(release);
  }
  relink();
  state.releases = releases;
}

/**
 * Refuses a revision whose failed generation put exactly these releases live (health failed): the pair is bad until
 * the desired state or an app's commit changes.
 */
async function refuseBadReleases(store: StateStore, revision: string, releases: { app: string; sha: string }[]): Promise<void> {
  const bad = (await store.badRevisions()).find(
    (entry) => entry.revision === revision && (entry.releases ?? []).length > 0 && (entry.releases ?? []).every((marked) => releases.some((r) => r.app === marked.app && r.sha === marked.sha)),
  );
  if (!bad) return;
  const named = (bad.releases ?? []).map((r) => `${r.app}@${r.sha.slice(0, 12)}`).join(', ');
  throw new EdgeError('REVISION_BAD', `revision ${revision.slice(0, 12)} with ${named} is marked bad (${bad.reason}); waiting for a newer commit of the desired state or of the app`, {
    stage: 'prepare',
    retry: 'refused',
  });
}

/** Makes one release ready on the host: reused when built already for the same spec, else exported and built. */
async function readyRelease(ctx: RunContext, state: RunState, app: AppIntent, sha: string, ref: string | undefined): Promise<AppRelease> {
  const store = need(ctx.store, 'state store');
  const { host } = ctx;
  const spec = buildSpecHash(app);
  const release = (marker: ReleaseMarker): AppRelease => ({
    app: app.name,
    sha,
    ...(ref ? { ref } : {}),
    ...(app.follow ? { follow: app.follow } : {}),
    repo: app.repo,
    builtAt: marker.builtAt,
    buildSeconds: marker.buildSeconds,
  });
  const named = `app ${app.name}: ${sha.slice(0, 12)}${ref ? ` (${ref})` : ''}`;
  const existing = await readMarker(host, app.name, sha);
  if (existing && existing.spec === spec) {
    state.notes?.push(`${named} is built already (${existing.builtAt})`);
    return release(existing);
  }
  if (app.rev) await resolveAppRevision({ app: app.name, repo: app.repo, rev: app.rev }, appMirrorDir(store, app.name), ctx.apps, ctx.signal);
  const owner = await appOwner(ctx, state, app);
  await ensureAppDirs(host, app.name, app.shared, owner);
  const revision = need(state.revision, 'revision');
  const failure = await store.readJson<BuildFailure>(buildFailurePath(store, app.name)).catch(() => undefined);
  if (failure && failure.revision === revision && failure.sha === sha && failure.spec === spec) {
    throw new EdgeError('APP_BUILD_FAILED', `${failure.reason} (remembered from ${failure.at}: not built again until the desired state, the commit or the build changes)`, {
      stage: 'prepare',
      retry: 'invalid',
    });
  }
  await removeReleaseLeftovers(host, app.name);
  const work = await newReleaseWorkDir(host, app.name, sha);
  // Absolute: the build's sandbox changes into this dir before it mounts it (a relative --root would miss it).
  const real = resolve(host.resolve(work));
  try {
    await archive(appMirrorDir(store, app.name), sha, real);
    await linkShared(real, app.shared);
    let buildSeconds = 0;
    if (app.build) {
      await chownTree(real, owner.uid, owner.gid);
      const started = performance.now();
      const result = await runBuild(
        { app: app.name, sha, hostDir: work, realDir: real, user: app.user, uid: owner.uid, gid: owner.gid, build: app.build, signal: ctx.signal },
        need(ctx.runner, 'command runner'),
        canUseSystemdRun(host.root) && ctx.runner?.dryRun === false,
      );
      buildSeconds = Math.round((performance.now() - started) / 10) / 100;
      if (result.exitCode !== 0) {
        const how = result.timedOut ? `timed out after ${app.build.timeoutSeconds} s` : result.exitCode === undefined ? 'was killed' : `exited ${result.exitCode}`;
        const output = ctx.redact(lastLines(result.output.replaceAll(real, work)));
        const reason = `app ${app.name}: build of ${sha.slice(0, 12)} ${how} (${result.via})${output ? `: ${output}` : ''}`;
        await store.writeJson(buildFailurePath(store, app.name), { revision, sha, spec, reason, at: new Date().toISOString() } satisfies BuildFailure);
        throw new EdgeError('APP_BUILD_FAILED', `${reason}; nothing live changed`, { stage: 'prepare', retry: 'invalid' });
      }
    }
    // Built: the release becomes root's, read-only for the app that runs it.
    await chownTree(real, 0, 0);
    const marker: ReleaseMarker = { app: app.name, sha, spec, builtAt: new Date().toISOString(), buildSeconds };
    await completeRelease(host, work, marker);
    crashPoint('prepare:release');
    ctx.log.info({ appName: app.name, sha, buildSeconds }, `app ${app.name}: release ${sha.slice(0, 12)} ready`);
    state.notes?.push(`${named} exported and built in ${buildSeconds} s`);
    return release(marker);
  } catch (error) {
    await removeWorkDir(host, work).catch(() => undefined);
    throw error;
  }
}

/** The ids the app builds as; a missing user is created as a system user (never under a sandbox root). */
async function appOwner(ctx: RunContext, state: RunState, app: AppIntent): Promise<{ uid: number; gid: number }> {
  if (ctx.host.root !== '/') return sandboxBuildIds(app.user);
  const found = await lookupUser(app.user);
  if (found) return found;
  const runner = need(ctx.runner, 'command runner');
  if (runner.dryRun) return { uid: SANDBOX_ID, gid: SANDBOX_ID };
  const result = await runner.run(systemUserArgv(app.user, appDir(app.name)));
  const created = result.exitCode === 0 ? await lookupUser(app.user) : undefined;
  if (!created) {
    throw new EdgeError('APP_USER_FAILED', `app ${app.name}: cannot create the system user ${app.user}: ${lastLines(`${result.stdout}\n${result.stderr}`, 2) || `exit ${result.exitCode}`}`, {
      stage: 'prepare',
      retry: 'stuck',
    });
  }
  // A change made on purpose, not a problem: notice, like an applied run.
  logAt(ctx.log, 'notice', { appName: app.name, user: app.user }, `app ${app.name}: created the system user ${app.user} (home ${appDir(app.name)}, no login shell)`);
  state.notes?.push(`app ${app.name}: created the system user ${app.user}`);
  return created;
}
