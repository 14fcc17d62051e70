/**
 * App releases on a real systemd (issue 8, scenarios a–f): lod-prod deploys the lod app from its own git repo
 * (test/helpers/app-repos.ts: tags v1, v2, v3 whose /healthz answers 500, broken-build; `main` at v2), which the
 * host config maps from https://git.example.com/edge/ to the container's forge through `apps.insteadOf`.
 * The desired state pins lod by a tag in the host vars (`lod.release`); each scenario is a desired-state commit.
 * One container for the whole file: the scenarios follow each other as on one host.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { AppRepo } from '../helpers/app-repos.js';
import { appAnswer, currentSha, invocationIds, releaseDirs, sendAppPushWebhook, waitForVersion } from '../helpers/e2e-apps.js';
import { EdgeHost, KILLED, SERVICE, type ApplyJson } from '../helpers/e2e-host.js';
import { head } from '../helpers/git-repo.js';
import { waitUntil } from '../helpers/wait.js';

/** The units of lod-prod besides lod.service (and the agent's own): none of them may restart for a release. */
const OTHER_UNITS = ['caddy.service', 'lod-backup.timer', 'systemd-journald.service', 'ufw.service'];

/**
 * Crash points of the release switch (reconciler/host/crash-points.ts): the new `current` link written beside the
 * old one, not yet renamed over it; then the link switched and the units not yet restarted.
 */
const SWITCH_CRASH_POINTS = ['link:created', 'activate:restart'] as const;

const RELEASE = (tag: string) => (text: string) => text.replace(/release: \S+/, `release: ${tag}`);

/** One app's entry in the status document. */
interface AppStatus {
  app: string;
  sha: string;
  ref?: string;
  builtAt?: string;
  buildSeconds?: number;
  previous?: string;
  failed?: { sha: string; reason: string };
}

describe('e2e app releases: lod from its own git repo on a real systemd', function () {
  this.timeout(300_000);
  let edge: EdgeHost;
  let lod: AppRepo;

  const step = (text: string) => process.stdout.write(`      ${text}\n`);
  const lodApp = async (): Promise<AppStatus | undefined> => {
    const status = (await edge.status()) as unknown as { apps?: AppStatus[] | Record<string, AppStatus> };
    const apps = Array.isArray(status.apps) ? status.apps : Object.values(status.apps ?? {});
    return apps.find((entry) => entry.app === 'lod');
  };
  const evidence = async (run?: { stderr: string; json?: ApplyJson }) =>
    `${run ? `${JSON.stringify(run.json?.error ?? run.json?.result)}\n${run.stderr.slice(-2000)}\n` : ''}${await edge.evidence(['lod.service'])}`;

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine builds the cached root first
    edge = await EdgeHost.boot();
    lod = edge.apps.lod;
  });
  after(async () => edge?.shutdown());

  it('a. v1 of lod goes live from its repo: built, linked, started as lod, /version says v1', async () => {
    step('apply lod-prod (lod pinned at tag v1)');
    const applied = await edge.applyOk();
    assert.equal(await currentSha(edge.box, 'lod'), lod.commits.v1, 'current → releases/<v1>');
    assert.equal(await appAnswer(edge.box, 'lod', '/version'), 'v1');
    assert.match(await appAnswer(edge.box, 'lod', '/build'), /^version=v1$/m, 'the build step ran in the release');
    assert.equal(await edge.box.unitState('lod.service'), 'active', await evidence());
    assert.equal(await edge.unitProperty('lod.service', 'User'), 'lod');
    const uid = JSON.parse(await appAnswer(edge.box, 'lod', '/env')) as { uid: number };
    assert.equal((await edge.box.exec(['id', '-u', 'lod'])).stdout.trim(), String(uid.uid), 'the app runs as its user');
    assert.deepEqual(await releaseDirs(edge.box, 'lod'), [lod.commits.v1]);
    const release = await edge.box.exec(['stat', '-c', '%U', `/srv/apps/lod/releases/${lod.commits.v1}/server.py`]);
    assert.notEqual(release.stdout.trim(), 'lod', 'the app user cannot rewrite its own release');
    const app = await lodApp();
    assert.equal(app?.sha, lod.commits.v1, JSON.stringify(app));
    assert.equal(app?.ref, 'v1');
    assert.equal((await edge.status()).lastApplied?.generation, applied.generation);

    const again = await edge.apply();
    assert.equal(again.json?.result, 'unchanged', await evidence(again));
  });

  it('b. a desired-state commit bumps lod to v2: built, switched, lod restarts, nothing else restarts', async () => {
    const before = await invocationIds(edge.box, ['lod.service', ...OTHER_UNITS]);
    step('commit lod.release v1 → v2, apply');
    await edge.commit('hosts/lod-prod.yaml', RELEASE('v2'), 'lod: v2');
    const applied = await edge.applyOk();
    assert.deepEqual(applied.commands.filter((argv) => argv[0] === 'systemctl' && /restart|start|stop/.test(argv[1] ?? '')).map((argv) => argv.join(' ')), ['systemctl restart lod.service']);
    assert.equal(await currentSha(edge.box, 'lod'), lod.commits.v2);
    await waitForVersion(edge.box, 'lod', 'v2');
    assert.match(await appAnswer(edge.box, 'lod', '/build'), /^version=v2$/m);

    const after = await invocationIds(edge.box, ['lod.service', ...OTHER_UNITS]);
    assert.notEqual(after['lod.service'], before['lod.service'], 'lod.service restarted');
    for (const unit of OTHER_UNITS) assert.equal(after[unit], before[unit], `${unit} was not restarted`);
    assert.deepEqual(await releaseDirs(edge.box, 'lod'), [lod.commits.v1, lod.commits.v2].sort(), 'v1 is kept (keep: 5)');
    const app = await lodApp();
    assert.equal(app?.sha, lod.commits.v2);
    assert.equal(app?.previous, lod.commits.v1);
  });

  it('c. v3 fails its health check: the link goes back to v2, v2 serves again, v3 is marked bad', async () => {
    step('commit lod.release v2 → v3 (its /healthz answers 500), apply');
    const revision = await edge.commit('hosts/lod-prod.yaml', RELEASE('v3'), 'lod: v3');
    const run = await edge.apply();
    assert.equal(run.exitCode, 1, await evidence(run));
    assert.equal(run.json?.result, 'rolled-back', await evidence(run));
    assert.equal(await currentSha(edge.box, 'lod'), lod.commits.v2, 'current → releases/<v2> again');
    await waitForVersion(edge.box, 'lod', 'v2');
    assert.equal((await edge.box.httpGet('http://127.0.0.1:8080/healthz')).status, 200);
    assert.equal(await edge.box.unitState('lod.service'), 'active');

    const status = await edge.status();
    assert.ok(status.badRevisions.some((bad) => bad.revision === revision), `the commit is marked bad: ${JSON.stringify(status.badRevisions)}`);
    const app = await lodApp();
    assert.equal(app?.sha, lod.commits.v2);
    assert.equal(app?.failed?.sha, lod.commits.v3, JSON.stringify(app));

    step('apply again: the (commit, v3) pair is not retried');
    const lodId = (await invocationIds(edge.box, ['lod.service']))['lod.service'];
    const again = await edge.apply();
    assert.equal(again.exitCode, 3, await evidence(again));
    assert.equal(again.json?.result, 'refused');
    assert.equal((await invocationIds(edge.box, ['lod.service']))['lod.service'], lodId, 'v2 keeps running untouched');
  });

  it('d. a build that fails is refused with its last output lines, and v2 keeps serving untouched', async () => {
    const before = await invocationIds(edge.box, ['lod.service', ...OTHER_UNITS]);
    const generation = (await edge.status()).lastApplied?.generation;
    step('commit lod.release → broken-build (a syntax error fails compileall), apply');
    await edge.commit('hosts/lod-prod.yaml', RELEASE('broken-build'), 'lod: a build that fails');
    const run = await edge.apply();
    assert.equal(run.exitCode, 1, await evidence(run));
    assert.equal(run.json?.result, 'invalid', await evidence(run));
    const error = run.json?.error;
    const problems = JSON.stringify(error);
    assert.ok(error?.code === 'APP_BUILD_FAILED' || error?.problems?.some((problem) => problem.code === 'APP_BUILD_FAILED'), problems);
    assert.ok(problems.includes(lod.commits.broken.slice(0, 12)), `the error names the SHA: ${problems}`);
    assert.match(problems, /lod/);
    assert.match(problems, /SyntaxError|broken\.py/, 'the build\'s last output lines are in the error');
    assert.deepEqual(run.json?.changes ?? [], [], 'nothing was planned, nothing applied');

    assert.equal(await currentSha(edge.box, 'lod'), lod.commits.v2);
    assert.equal(await appAnswer(edge.box, 'lod', '/version'), 'v2');
    assert.deepEqual(await invocationIds(edge.box, ['lod.service', ...OTHER_UNITS]), before, 'no unit restarted');
    assert.ok(!(await releaseDirs(edge.box, 'lod')).includes(lod.commits.broken), 'no release dir of the broken build is left');
    assert.equal((await edge.status()).lastApplied?.generation, generation, 'the live generation is the same');
  });

  it('e. follow mode: a push to the app repo\'s branch plus one webhook brings the new commit live', async () => {
    step('commit lod: follow main (at v2) instead of a tag; install the agent as its service');
    await edge.commit('roles/lod/role.yaml', (text) => text.replace(/tag: .*/, 'follow: main'), 'lod: follow main');
    const secret = await edge.installService({ webhook: { enabled: true }, poll: { enabled: true, intervalSeconds: 3600, jitterSeconds: 0 } });
    const desired = await head(edge.workRepo);
    await edge.waitUntilLive(desired, 120_000).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await edge.box.journal(SERVICE.unit, 60)}`);
    });
    assert.equal(await currentSha(edge.box, 'lod'), lod.commits.v2, 'main is at v2: the release is the same');

    step('push v4 to the app repo\'s main, send one webhook of the app repo');
    const v4 = await lod.pushVersion('v4');
    const sent = performance.now();
    const answer = await sendAppPushWebhook(edge.box, SERVICE.listen, { app: 'lod', branch: 'main', after: v4, secret, delivery: 'app-e2e-1' });
    assert.ok(answer.status >= 200 && answer.status < 300, `the agent took the app's webhook: ${answer.status} ${answer.body}`);
    await waitForVersion(edge.box, 'lod', 'v4', 120_000).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await edge.box.journal(SERVICE.unit, 60)}`);
    });
    step(`app push webhook to v4 serving: ${Math.round(performance.now() - sent)} ms`);
    assert.equal(await currentSha(edge.box, 'lod'), v4);
    await waitUntil(async () => (await lodApp())?.sha === v4, { timeoutMs: 30_000, what: 'status to name v4' });
    const app = await lodApp();
    assert.equal(app?.ref, 'main');
    assert.equal(app?.previous, lod.commits.v2);
    assert.equal(await edge.box.unitState(SERVICE.unit), 'active');

    step('stop the agent (the next scenario runs it by hand)');
    await edge.box.exec(['systemctl', 'stop', SERVICE.unit], { timeoutMs: 120_000 });
  });

  it('f. SIGKILL during the switch, then the agent\'s start: exactly the old or the new release, and the next run converges', async () => {
    // Two moments of the switch: the new link written beside the old one (before its rename), and the link renamed
    // but lod not yet restarted.
    for (const [point, version] of [[SWITCH_CRASH_POINTS[0], 'v5'], [SWITCH_CRASH_POINTS[1], 'v6']] as const) {
      const old = await currentSha(edge.box, 'lod');
      const oldVersion = await appAnswer(edge.box, 'lod', '/version');
      const next = await lod.pushVersion(version);
      step(`push ${version} to main; apply killed at ${point}`);
      const crashed = await edge.apply('lod-prod', { env: { EDGE_CRASH_AT: point } });
      assert.equal(crashed.exitCode, KILLED, `the agent was not killed at ${point}: ${crashed.stderr.slice(-2000)}`);
      assert.ok([old, next].includes(await currentSha(edge.box, 'lod')), 'even mid-crash the link names one whole release');

      step('the agent\'s start (recover, as the service\'s ExecStartPre runs it)');
      const recovered = await edge.recover();
      assert.equal(recovered.exitCode, 0, recovered.stderr);
      const live = await currentSha(edge.box, 'lod');
      assert.ok(live === old || live === next, `current → ${live}: neither ${old} nor ${next}`);
      const serving = live === next ? version : oldVersion;
      step(`after recovery: ${serving} (${live.slice(0, 12)})`);
      await waitForVersion(edge.box, 'lod', serving);
      assert.equal(await edge.box.unitState('lod.service'), 'active');
      const generation = (await edge.status()).lastApplied?.generation ?? 0;
      assert.deepEqual(await edge.generationMismatches(generation), [], 'the files are exactly the live generation\'s');
      assert.equal((await lodApp())?.sha, live, 'status names the release that is live');
      const leftovers = (await edge.box.exec(['ls', '-A', '/srv/apps/lod'])).stdout.split('\n').filter(Boolean).sort();
      assert.deepEqual(leftovers, ['current', 'releases', 'shared'], 'no half-made link is left beside current');

      step(`the next run converges to ${version}`);
      await edge.applyOk();
      assert.equal(await currentSha(edge.box, 'lod'), next);
      await waitForVersion(edge.box, 'lod', version);
      assert.equal((await lodApp())?.sha, next);
      const again = await edge.apply();
      assert.equal(again.json?.result, 'unchanged', await evidence(again));
    }
  });
});
