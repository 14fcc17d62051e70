/**
 * `follow` mode's trigger: a signed push from an app repo to the branch a live app follows starts one reconcile
 * (the agent then resolves the branch itself); a push to another branch or from another repo is acknowledged and
 * ignored, and an unsigned one gets 401 as always.
 */
import assert from 'node:assert/strict';
import { createControlServer, type ControlServer } from '../../reconciler/triggers/http-server.js';
import { repoKey, type AppWatch } from '../../reconciler/triggers/webhook.js';
import type { RunReport, RunRequest } from '../../reconciler/triggers/run-request.js';
import { ReconcileWorker } from '../../reconciler/triggers/worker.js';
import { AFTER, SECRET, giteaHeaders, githubHeaders, post } from '../helpers/webhook-client.js';

const appPush = (ref: string, cloneUrl: string) =>
  JSON.stringify({ ref, after: AFTER, repository: { full_name: 'edge/lod', clone_url: cloneUrl, ssh_url: 'git@git.example.com:edge/lod.git' } });

describe('webhooks from app repos (follow mode)', function () {
  this.timeout(60_000);
  let server: ControlServer;
  let worker: ReconcileWorker;
  let requests: RunRequest[];
  const apps: AppWatch[] = [{ app: 'lod', branch: 'main', repos: ['https://git.example.com/edge/lod.git', '/srv/git/edge/lod.git'] }];

  beforeEach(async () => {
    requests = [];
    worker = new ReconcileWorker({
      run: async (request): Promise<RunReport> => {
        requests.push(request);
        return { result: 'applied', durationMs: 1 };
      },
    });
    server = await createControlServer({ listen: '127.0.0.1:0', worker, status: async () => ({}), webhook: { secret: SECRET, watch: { branch: 'release' }, apps: () => apps } });
  });
  afterEach(async () => {
    await worker.stop(1_000);
    await server.close();
  });

  it('starts one reconcile for a push to a followed branch of the app repo, without taking its commit as a desired-state revision', async () => {
    const body = appPush('refs/heads/main', 'https://git.example.com/edge/lod.git');
    const headers = githubHeaders(body);
    const reply = await post(`${server.url}/webhook`, body, headers);
    assert.equal(reply.status, 202, reply.text);
    assert.deepEqual(JSON.parse(reply.text), { accepted: 'refs/heads/main', app: 'lod', decision: 'started' });
    await worker.idle();
    assert.deepEqual(requests.map((request) => request.reasons), [[`webhook ${headers['x-github-delivery']} refs/heads/main`]]);
  });

  it('matches the repo by any of its urls (ssh form, another scheme, no .git), from gitea too', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: 'http://GIT.example.com:3000/edge/lod' } });
    const reply = await post(`${server.url}/webhook/gitea`, body, giteaHeaders(body));
    assert.equal(reply.status, 202, reply.text);
    assert.equal(JSON.parse(reply.text).app, 'lod');
    await worker.idle();
    assert.equal(requests.length, 1);
    assert.equal(repoKey('ssh://git@git.example.com:22/edge/lod.git'), 'git.example.com/edge/lod');
    assert.equal(repoKey('git@git.example.com:edge/lod.git'), 'git.example.com/edge/lod');
    assert.equal(repoKey('file:///srv/git/edge/lod.git'), '/srv/git/edge/lod');
  });

  it('ignores a push to another branch of the app repo, and one from another repo', async () => {
    for (const body of [appPush('refs/heads/feature', 'https://git.example.com/edge/lod.git'), JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: 'https://git.example.com/edge/other.git' } })]) {
      const reply = await post(`${server.url}/webhook`, body, githubHeaders(body));
      assert.equal(reply.status, 202, reply.text);
      assert.match(JSON.parse(reply.text).ignored, /is not watched/);
    }
    await worker.idle();
    assert.equal(requests.length, 0);
  });

  it('refuses an app push with a bad signature like any other', async () => {
    const body = appPush('refs/heads/main', 'https://git.example.com/edge/lod.git');
    const reply = await post(`${server.url}/webhook`, body, githubHeaders(body, 'push', 'not-the-secret'));
    assert.equal(reply.status, 401);
    await worker.idle();
    assert.equal(requests.length, 0);
  });
});
