/**
 * Each app's release as `status`, `/status` and `/metrics` show it: the live release (SHA, tag or branch, when
 * it was built and how long the build took), the release that was live before it, and the last failure (a build
 * refused, or a release that failed health and is marked bad) of a commit that is not live.
 */
import { join } from 'node:path';
import type { GenerationMeta, StateStore } from './state-store.js';

/** One app in the status document. */
export interface AppStatus {
  app: string;
  sha: string;
  /** The tag or followed branch it was resolved from. */
  ref?: string;
  builtAt: string;
  buildSeconds: number;
  /** The release that was live before this one. */
  previous?: string;
  /** The last commit of this app that failed (its build, or health) since the live generation was made. */
  failed?: { sha: string; reason: string };
}

/** The app statuses of a host whose live generation is `live`. */
export async function appStatuses(store: StateStore, live: GenerationMeta | undefined): Promise<AppStatus[]> {
  const releases = live?.releases ?? [];
  if (releases.length === 0) return [];
  const older = (await store.history()).filter((meta) => meta.generation < (live?.generation ?? 0) && meta.result === 'good');
  const bad = await store.badRevisions();
  const statuses: AppStatus[] = [];
  for (const release of releases) {
    const previous = older.map((meta) => meta.releases?.find((r) => r.app === release.app)?.sha).find((sha) => sha !== undefined && sha !== release.sha);
    // A failure from before the live generation was made is history: a newer release went live since.
    const failure = await lastFailure(store, release.app, release.sha, bad);
    const failed = failure && live && failure.at > live.createdAt ? failure : undefined;
    statuses.push({
      app: release.app,
      sha: release.sha,
      ...(release.ref ? { ref: release.ref } : {}),
      builtAt: release.builtAt,
      buildSeconds: release.buildSeconds,
      ...(previous ? { previous } : {}),
      ...(failed ? { failed } : {}),
    });
  }
  return statuses;
}

/** The newest failure of another commit of `app`: a remembered build failure or a bad (revision, release) pair. */
async function lastFailure(
  store: StateStore,
  app: string,
  liveSha: string,
  bad: Awaited<ReturnType<StateStore['badRevisions']>>,
): Promise<(AppStatus['failed'] & { at: string }) | undefined> {
  const candidates: { sha: string; reason: string; at: string }[] = [];
  const build = await store.readJson<{ sha: string; reason: string; at: string }>(join(store.dir, 'apps', `${app}.build-failed.json`)).catch(() => undefined);
  if (build && build.sha !== liveSha) candidates.push({ sha: build.sha, reason: build.reason, at: build.at });
  for (const entry of bad) {
    const release = entry.releases?.find((r) => r.app === app);
    if (release && release.sha !== liveSha) candidates.push({ sha: release.sha, reason: entry.reason, at: entry.markedAt });
  }
  return candidates.sort((a, b) => (a.at < b.at ? 1 : -1))[0];
}
