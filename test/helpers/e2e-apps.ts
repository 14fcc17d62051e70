/**
 * The example apps on the e2e container: their git repos inside the container (the apps' forge, which the host
 * config maps the example's https://git.example.com/edge/ URLs to through `apps.insteadOf`), and what a test
 * reads of a release on the host: the `current` link, the app's /version, the units' invocation ids.
 */
import { createHmac } from 'node:crypto';
import { createExampleAppRepos, EXAMPLE_APP_URL_PREFIX, type AppRepo, type ExampleApp } from './app-repos.js';
import type { SystemdContainer } from './container.js';
import { waitUntil } from './wait.js';

/** Where the app repos live inside the container: `<APP_FORGE>/<app>.git`. */
export const APP_FORGE = '/srv/forge/apps';

/** The URL prefix the example desired state names its app repos by. */
export const APP_URL_PREFIX = EXAMPLE_APP_URL_PREFIX;

/** The `apps` section of the host config: the example's app URLs (prefix → replacement) go to the container's forge. */
export const APPS_HOST_CONFIG = { insteadOf: { [APP_URL_PREFIX]: `${APP_FORGE}/` } };

/** The same mapping for a one-off `apply` (`--app-instead-of PREFIX=REPLACEMENT`). */
export const APP_INSTEAD_OF_ARGS = ['--app-instead-of', `${APP_URL_PREFIX}=${APP_FORGE}/`];

/** Where each example app answers inside the container. */
export const APP_URLS: Record<ExampleApp, string> = {
  lod: 'http://127.0.0.1:8080',
  'model-gateway': 'http://127.0.0.1:9000',
};

/** Creates both example apps' repos (tags v1, v2, v3, broken-build; main at v2) in the container's forge. */
export function createContainerAppRepos(box: SystemdContainer): Promise<Record<ExampleApp, AppRepo>> {
  return createExampleAppRepos(box.hostPath(APP_FORGE));
}

/** The release `/srv/apps/<app>/current` points at (`releases/<sha>`), or '' when there is no link. */
export async function currentLink(box: SystemdContainer, app: string): Promise<string> {
  const answer = await box.exec(['readlink', `/srv/apps/${app}/current`], { reject: false });
  return answer.exitCode === 0 ? answer.stdout.trim() : '';
}

/** The SHA of the release `current` points at ('' when none). */
export async function currentSha(box: SystemdContainer, app: string): Promise<string> {
  return (await currentLink(box, app)).replace(/^.*releases\//, '').replace(/\/$/, '');
}

/** The names in /srv/apps/<app>/releases (finished releases and any temp dir). */
export async function releaseDirs(box: SystemdContainer, app: string): Promise<string[]> {
  const answer = await box.exec(['ls', '-1', `/srv/apps/${app}/releases`], { reject: false });
  return answer.stdout.split('\n').filter(Boolean).sort();
}

/** What the app answers at `path` once it answers 200 (it may be restarting); waits up to 90 s. */
export async function appAnswer(box: SystemdContainer, app: ExampleApp, path: string): Promise<string> {
  const answer = await waitUntil(
    async () => {
      const response = await box.httpGet(`${APP_URLS[app]}${path}`);
      return response.status === 200 ? response : false;
    },
    { timeoutMs: 90_000, intervalMs: 200, what: `${app} to answer ${path}` },
  );
  return (answer as { body: string }).body;
}

/** Waits until the app's /version says `version` (up to `timeoutMs`). */
export async function waitForVersion(box: SystemdContainer, app: ExampleApp, version: string, timeoutMs = 90_000): Promise<void> {
  await waitUntil(
    async () => (await box.httpGet(`${APP_URLS[app]}/version`).catch(() => ({ status: 0, body: '' }))).body === version,
    { timeoutMs, intervalMs: 200, what: `${app} /version to say ${version}` },
  );
}

/** Each unit's InvocationID: systemd gives a unit a new one every time it starts, so a restart changes it. */
export async function invocationIds(box: SystemdContainer, units: string[]): Promise<Record<string, string>> {
  const entries = await Promise.all(
    units.map(async (unit) => [unit, (await box.exec(['systemctl', 'show', '-p', 'InvocationID', '--value', unit])).stdout.trim()] as const),
  );
  return Object.fromEntries(entries);
}

/**
 * POSTs a GitHub push webhook of an app repo (not the desired-state repo) from inside the container, signed with
 * `secret`, as GitHub sends it for a push to `branch` of https://git.example.com/edge/<app>.git.
 */
export async function sendAppPushWebhook(
  box: SystemdContainer,
  listen: string,
  options: { app: string; branch: string; after: string; secret: string; delivery: string },
): Promise<{ status: number; body: string }> {
  const url = `${APP_URL_PREFIX}${options.app}.git`;
  const payload = JSON.stringify({
    ref: `refs/heads/${options.branch}`,
    before: '0'.repeat(40),
    after: options.after,
    repository: { full_name: `edge/${options.app}`, name: options.app, clone_url: url, html_url: url.replace(/\.git$/, ''), ssh_url: `git@git.example.com:edge/${options.app}.git` },
  });
  const signature = `sha256=${createHmac('sha256', options.secret).update(payload).digest('hex')}`;
  const { stdout } = await box.exec(
    [
      'curl', '-sS', '--max-time', '10', '-X', 'POST', '--data-binary', '@-', '-H', 'content-type: application/json',
      '-H', 'x-github-event: push', '-H', `x-github-delivery: ${options.delivery}`, '-H', `x-hub-signature-256: ${signature}`,
      '-w', '\n%{http_code}', `http://${listen}/webhook/github`,
    ],
    { input: payload },
  );
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}
