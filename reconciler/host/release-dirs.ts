/**
 * The release dirs of an app on the host: `/srv/apps/<app>/releases/<sha>/` (built, then read-only for the app),
 * `/srv/apps/<app>/shared/<dir>/` (the app user's, persistent) and the marker file that says a release is complete
 * and how it was built. A release is written under a hidden temp name and renamed when complete, so a half-built
 * one is never taken for a release; a release dir that is not live is harmless. Every path goes through the host
 * adapter's checks (no symlinked directory on the way).
 */
import { chmod, chown, lchown, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { syncDir, TEMP_PREFIX, type Host } from './host.js';

/** The marker of a complete release, at `<release>/.edge-release.json` (not part of the app's tree). */
export const RELEASE_MARKER = '.edge-release.json';

/** What the marker says. */
export interface ReleaseMarker {
  app: string;
  sha: string;
  /** The hash of the build spec (command, env, network, shared dirs): another spec builds again. */
  spec: string;
  builtAt: string;
  buildSeconds: number;
}

/** The app's dir. */
export function appDir(app: string): string {
  return `/srv/apps/${app}`;
}

/** The release dir of a commit. */
export function releaseDir(app: string, sha: string): string {
  return `${appDir(app)}/releases/${sha}`;
}

/** Creates a directory owned by uid:gid, after checking that nothing on the way is a symlink. */
async function ensureDir(host: Host, path: string, mode: number, uid = 0, gid = 0): Promise<void> {
  await host.checkNoSymlinks(`${path}/.edge-check`);
  const real = host.resolve(path);
  const stat = await lstat(real).catch(() => undefined);
  if (stat && !stat.isDirectory()) throw new Error(`${path} is not a directory; move it away by hand`);
  if (!stat) {
    await mkdir(real, { mode });
    // Exactly `mode`: under the agent's unit (UMask=0077) mkdir alone makes 0700, which the app's user cannot enter.
    await chmod(real, mode);
  }
  if (process.getuid?.() === 0) await chown(real, uid, gid);
}

/**
 * The app's dirs: its own, releases/ and shared/ (root's, 0755), and each shared dir (the app user's, 0750).
 * Shared dirs are never removed.
 */
export async function ensureAppDirs(host: Host, app: string, shared: readonly string[], owner: { uid: number; gid: number }): Promise<void> {
  await mkdir(host.root, { recursive: true });
  for (const dir of ['/srv', '/srv/apps', appDir(app), `${appDir(app)}/releases`, `${appDir(app)}/shared`]) await ensureDir(host, dir, 0o755);
  for (const name of shared) await ensureDir(host, `${appDir(app)}/shared/${name}`, 0o750, owner.uid, owner.gid);
}

/** The marker of a release on the host, or undefined when there is none (or it is unreadable). */
export async function readMarker(host: Host, app: string, sha: string): Promise<ReleaseMarker | undefined> {
  const path = `${releaseDir(app, sha)}/${RELEASE_MARKER}`;
  const live = await host.read(path).catch(() => undefined);
  if (live?.type !== 'file') return undefined;
  try {
    return JSON.parse(live.content.toString('utf8')) as ReleaseMarker;
  } catch {
    return undefined;
  }
}

/** A fresh hidden dir under releases/ to export and build a release in; returns its host path. */
export async function newReleaseWorkDir(host: Host, app: string, sha: string): Promise<string> {
  const releases = `${appDir(app)}/releases`;
  await host.checkNoSymlinks(`${releases}/.edge-check`);
  const real = await mkdtemp(join(host.resolve(releases), `${TEMP_PREFIX}${sha}.`));
  return `${releases}/${real.slice(host.resolve(releases).length + 1)}`;
}

/** Gives a tree to uid:gid (links themselves, never what they point at). */
export async function chownTree(real: string, uid: number, gid: number): Promise<void> {
  if (process.getuid?.() !== 0) return;
  await lchown(real, uid, gid);
  const stat = await lstat(real);
  if (!stat.isDirectory()) return;
  for (const entry of await readdir(real)) await chownTree(join(real, entry), uid, gid);
}

/** Links each shared dir into the release (`<release>/<dir>` → `../../shared/<dir>`), replacing what the tree had there. */
export async function linkShared(realRelease: string, shared: readonly string[]): Promise<void> {
  for (const name of shared) {
    const path = join(realRelease, name);
    await rm(path, { recursive: true, force: true });
    await symlink(`../../shared/${name}`, path);
  }
}

/** Writes the marker and renames the work dir to the release's own name; a stale dir of that name is removed first. */
export async function completeRelease(host: Host, work: string, marker: ReleaseMarker): Promise<void> {
  const realWork = host.resolve(work);
  await writeFile(join(realWork, RELEASE_MARKER), `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o644 });
  // The work dir was made private (mkdtemp); the release is readable by the app's user.
  await chmod(realWork, 0o755);
  const target = releaseDir(marker.app, marker.sha);
  await host.checkNoSymlinks(target);
  const realTarget = host.resolve(target);
  if (await lstat(realTarget).catch(() => undefined)) await removeRealDir(realTarget);
  await rename(realWork, realTarget);
  await syncDir(host.resolve(`${appDir(marker.app)}/releases`));
}

/** Removes a dir by renaming it to a hidden name first, so a kill never leaves a half-removed release under its name. */
async function removeRealDir(real: string): Promise<void> {
  const doomed = join(real, '..', `${TEMP_PREFIX}removed.${randomBytes(4).toString('hex')}`);
  await rename(real, doomed);
  await rm(doomed, { recursive: true, force: true });
}

/** Removes a work dir (a failed build) or the leftovers of killed runs (hidden temp dirs under releases/). */
export async function removeWorkDir(host: Host, work: string): Promise<void> {
  await host.checkNoSymlinks(work);
  await rm(host.resolve(work), { recursive: true, force: true });
}

/** Removes what killed runs left under the app's releases/ (hidden temp dirs). */
export async function removeReleaseLeftovers(host: Host, app: string): Promise<string[]> {
  const releases = `${appDir(app)}/releases`;
  await host.checkNoSymlinks(`${releases}/.edge-check`);
  const entries = await readdir(host.resolve(releases)).catch(() => [] as string[]);
  const left = entries.filter((name) => name.startsWith(TEMP_PREFIX));
  for (const name of left) await rm(join(host.resolve(releases), name), { recursive: true, force: true });
  return left.map((name) => `${releases}/${name}`);
}

/** The releases on the host, newest build first (by marker; a release without one counts as oldest). */
export async function listReleases(host: Host, app: string): Promise<{ sha: string; builtAt: string }[]> {
  const releases = `${appDir(app)}/releases`;
  await host.checkNoSymlinks(`${releases}/.edge-check`);
  const entries = await readdir(host.resolve(releases)).catch(() => [] as string[]);
  const found = await Promise.all(
    entries.filter((name) => /^[0-9a-f]{40}$/.test(name)).map(async (sha) => {
      const text = await readFile(join(host.resolve(releases), sha, RELEASE_MARKER), 'utf8').catch(() => '');
      const builtAt = /"builtAt":\s*"([^"]+)"/.exec(text)?.[1] ?? '';
      return { sha, builtAt };
    }),
  );
  return found.sort((a, b) => (a.builtAt < b.builtAt ? 1 : a.builtAt > b.builtAt ? -1 : a.sha < b.sha ? -1 : 1));
}

/**
 * Keeps the newest `keep` releases of an app and every one in `protect` (the live one, the newest good one before
 * it); removes the others. Returns the SHAs removed.
 */
export async function pruneReleases(host: Host, app: string, keep: number, protect: ReadonlySet<string>): Promise<string[]> {
  const releases = await listReleases(host, app);
  const kept = new Set(protect);
  for (const release of releases) {
    if (kept.size >= Math.max(keep, protect.size)) break;
    kept.add(release.sha);
  }
  const removed: string[] = [];
  for (const release of releases) {
    if (kept.has(release.sha)) continue;
    const path = releaseDir(app, release.sha);
    await host.checkNoSymlinks(path);
    await removeRealDir(host.resolve(path));
    removed.push(release.sha);
  }
  return removed;
}
