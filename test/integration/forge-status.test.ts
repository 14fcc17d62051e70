/**
 * The forge client, reporter and outbox against the local forge stand-in, whose every request is checked against
 * GitHub's published OpenAPI description: commit statuses on GitHub and Gitea paths, deployments per host,
 * descriptions cut to 140 characters and redacted, and an outbox that survives the forge being down and lets a
 * newer outcome replace an unsent older one.
 */
import assert from 'node:assert/strict';
import { ForgeClient } from '../../reconciler/fleet/forge-client.js';
import { ForgeReporter } from '../../reconciler/fleet/forge-reporter.js';
import { forgeApiUrl, ownerAndRepo } from '../../reconciler/config/forge-config.js';
import { silentLogger } from '../../reconciler/run-context.js';
import { redactorFor } from '../../reconciler/secrets/redact.js';
import { checkAgainstOpenApi, startForgeStandIn, type ForgeStandIn } from '../helpers/forge-stand-in.js';
import { until } from '../helpers/wait.js';

const TOKEN = 'ghs_forgeStandInToken0123456789';
const SHA = 'a'.repeat(40);
const NEWER = 'b'.repeat(40);
const SECRET = 'db-password-5b9e1c-not-for-the-forge';

describe('forge statuses (against GitHub\'s OpenAPI description)', function () {
  this.timeout(120_000);
  let forge: ForgeStandIn;

  before(async () => {
    forge = await startForgeStandIn(TOKEN);
  });
  after(async () => {
    await forge?.close();
  });

  const client = (kind: 'github' | 'gitea') =>
    new ForgeClient({ kind, apiUrl: forgeApiUrl(kind, kind === 'gitea' ? forge.origin : forge.origin), owner: 'acme', repo: 'desired-state', token: TOKEN }, silentLogger, { retries: 0 });

  it('the stand-in refuses what GitHub\'s description does not allow', () => {
    const query = new URLSearchParams();
    assert.deepEqual(checkAgainstOpenApi('POST', `/repos/acme/d/statuses/${SHA}`, query, { state: 'success', context: 'x' }).problems, []);
    assert.match(checkAgainstOpenApi('POST', `/repos/acme/d/statuses/${SHA}`, query, { state: 'done' }).problems.join(), /allowed values/);
    assert.match(checkAgainstOpenApi('POST', `/repos/acme/d/statuses/${SHA}`, query, { state: 'success', colour: 'red' }).problems.join(), /colour/);
    assert.match(checkAgainstOpenApi('PUT', `/repos/acme/d/statuses/${SHA}`, query, {}).problems.join(), /not an operation/);
    assert.match(checkAgainstOpenApi('POST', '/repos/acme/d/status', query, {}).problems.join(), /not a path/);
  });

  it('posts and reads commit statuses on GitHub\'s paths', async () => {
    const github = client('github');
    await github.postStatus(SHA, { state: 'pending', context: 'edge-reconciler/w1', description: 'applying', targetUrl: 'http://100.64.0.21:9321/' });
    await github.postStatus(SHA, { state: 'success', context: 'edge-reconciler/w1', description: 'live and healthy' });
    await github.postStatus(SHA, { state: 'failure', context: 'edge-reconciler/w2', description: 'rolled-back' });
    const reports = await github.hostReports(SHA, ['w1', 'w2', 'w3']);
    assert.deepEqual(Object.fromEntries(reports), {
      w1: { state: 'success', detail: 'live and healthy' },
      w2: { state: 'failure', detail: 'rolled-back' },
      w3: { state: 'pending', detail: 'no status yet' },
    });
    const sent = forge.requests.filter((request) => request.flavor === 'github');
    assert.deepEqual(sent.map((request) => request.operation), ['repos/create-commit-status', 'repos/create-commit-status', 'repos/create-commit-status', 'repos/get-combined-status-for-ref']);
    for (const request of sent) {
      assert.deepEqual(request.problems, [], `${request.method} ${request.path}`);
      assert.ok(request.authorized);
    }
  });

  it('posts and reads commit statuses on Gitea\'s /api/v1 paths', async () => {
    const gitea = client('gitea');
    assert.equal(gitea.settings.apiUrl, `${forge.origin}/api/v1`);
    await gitea.postStatus(NEWER, { state: 'success', context: 'edge-reconciler/w1', description: 'live and healthy' });
    assert.equal((await gitea.hostReports(NEWER, ['w1'])).get('w1')?.state, 'success');
    const sent = forge.requests.filter((request) => request.flavor === 'gitea');
    assert.deepEqual(sent.map((request) => `${request.method} ${request.path}`), [
      `POST /api/v1/repos/acme/desired-state/statuses/${NEWER}`,
      `GET /api/v1/repos/acme/desired-state/commits/${NEWER}/status`,
    ]);
    for (const request of sent) assert.deepEqual(request.problems, []);
  });

  it('creates a GitHub deployment per host and moves it from in_progress to its outcome', async () => {
    const sha = 'c'.repeat(40);
    const reporter = new ForgeReporter({ client: client('github'), host: 'w3', log: silentLogger, redact: (text) => text, deployments: true, fleetUrl: 'http://100.64.0.10:9321/' });
    reporter.applying(sha);
    reporter.finished({ result: 'applied', revision: sha, generation: 4 });
    await until('the deployment to succeed', async () => (forge.deployments.find((d) => d.sha === sha)?.statuses.includes('success') ? true : undefined));
    const deployment = forge.deployments.find((d) => d.sha === sha);
    assert.equal(deployment?.environment, 'w3');
    assert.deepEqual(deployment?.statuses, ['in_progress', 'success']);
    assert.equal(forge.latest(sha, 'edge-reconciler/w3')?.state, 'success');
    assert.equal(forge.latest(sha, 'edge-reconciler/w3')?.target_url, 'http://100.64.0.10:9321/');
    for (const request of forge.requests) assert.deepEqual(request.problems, [], `${request.method} ${request.path}`);
    await reporter.close();
  });

  it('says why a run failed in at most 140 characters, with secrets redacted', async () => {
    const sha = 'd'.repeat(40);
    const reporter = new ForgeReporter({ client: client('github'), host: 'w1', log: silentLogger, redact: redactorFor([SECRET]), deployments: false });
    reporter.finished({
      result: 'rolled-back',
      revision: sha,
      code: 'HEALTH_FAILED',
      reason: 'x',
      failedCheck: { name: 'app-http', message: `GET http://127.0.0.1/health answered 503 with ${SECRET} ${'and a long body '.repeat(20)}` },
    });
    const status = await until('the failure status', async () => forge.latest(sha, 'edge-reconciler/w1'));
    assert.equal(status.state, 'failure');
    assert.ok((status.description ?? '').length <= 140, status.description ?? '');
    assert.match(status.description ?? '', /^rolled-back: HEALTH_FAILED: check app-http failed: GET/);
    assert.ok(!JSON.stringify(forge.requests).includes(SECRET), 'the secret reached the forge');
    await reporter.close();
  });

  it('keeps posting through a forge outage, counting failures, and sends only the newest outcome per commit', async () => {
    const sha = 'e'.repeat(40);
    const attempts: boolean[] = [];
    const reporter = new ForgeReporter({ client: client('github'), host: 'w2', log: silentLogger, redact: (text) => text, deployments: false, onAttempt: (ok) => attempts.push(ok), initialBackoffMs: 200, maxBackoffMs: 400 });
    await forge.down();
    try {
      reporter.finished({ result: 'waiting', revision: sha, code: 'WAVE_WAITING', reason: 'waiting for wave 1: w1' });
      await until('a failed post', async () => (attempts.includes(false) ? true : undefined));
      reporter.applying(sha);
      reporter.finished({ result: 'applied', revision: sha, generation: 7 });
      assert.equal(reporter.unsent, 1);
    } finally {
      await forge.up();
    }
    await until('the outcome delivered', async () => forge.latest(sha, 'edge-reconciler/w2'));
    assert.deepEqual(forge.statuses.get(sha)?.map((status) => status.state), ['success']);
    assert.equal(reporter.unsent, 0);
    assert.ok(attempts.filter((ok) => !ok).length >= 1);
    await reporter.close();
  });

  it('tells owner and repo from the repo URL', () => {
    assert.deepEqual(ownerAndRepo('git@github.com:acme/desired-state.git'), { owner: 'acme', repo: 'desired-state' });
    assert.deepEqual(ownerAndRepo('https://gitea.example.com/ops/edge/desired.git'), { owner: 'edge', repo: 'desired' });
    assert.deepEqual(ownerAndRepo('ssh://git@gitea.example.com:2222/acme/desired-state'), { owner: 'acme', repo: 'desired-state' });
    assert.equal(ownerAndRepo('/srv/git/desired.git'), undefined);
  });
});
