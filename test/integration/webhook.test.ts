/**
 * Push webhooks over real HTTP on 127.0.0.1: good GitHub and Gitea signatures trigger one reconcile; forged,
 * missing and tampered ones get 401 and trigger nothing; bodies past 1 MiB get 413; other refs are acknowledged
 * and ignored; and a burst of 500 deliveries for one commit gives one reconcile.
 */
import assert from 'node:assert/strict';
import { createControlServer, type ControlServer } from '../../reconciler/triggers/http-server.js';
import type { WatchedRef } from '../../reconciler/triggers/webhook.js';
import type { RunReport, RunRequest } from '../../reconciler/triggers/run-request.js';
import { ReconcileWorker } from '../../reconciler/triggers/worker.js';
import { AFTER, SECRET, githubHeaders, giteaHeaders, hmacHex, post as postTo, postRaw as postRawTo, pushPayload, type Reply } from '../helpers/webhook-client.js';

function post(server: ControlServer, path: string, body: string, headers: Record<string, string>): Promise<Reply> {
  return postTo(`${server.url}${path}`, body, headers);
}

function postRaw(server: ControlServer, path: string, body: Buffer, headers: Record<string, string>, declareLength: boolean): Promise<Reply> {
  return postRawTo(`${server.url}${path}`, body, headers, declareLength);
}

describe('webhooks over http', function () {
  this.timeout(180_000);
  let server: ControlServer;
  let worker: ReconcileWorker;
  let requests: RunRequest[];
  /** While set, runs wait on it: lets a test hold the first run open. */
  let gate: Promise<void> | undefined;

  const start = async (watch: WatchedRef = { branch: 'main' }): Promise<void> => {
    requests = [];
    worker = new ReconcileWorker({
      run: async (request): Promise<RunReport> => {
        requests.push(request);
        request.onRevision(AFTER);
        await gate;
        return { result: 'applied', revision: AFTER, durationMs: 1 };
      },
    });
    server = await createControlServer({ listen: '127.0.0.1:0', worker, status: async () => ({}), webhook: { secret: SECRET, watch } });
  };

  afterEach(async () => {
    gate = undefined;
    await worker.stop(1_000);
    await server.close();
  });

  it('accepts a github push to the watched branch with a good signature and runs one reconcile', async () => {
    await start();
    const body = pushPayload('refs/heads/main');
    const headers = githubHeaders(body);
    const reply = await post(server, '/webhook/github', body, headers);
    assert.equal(reply.status, 202, reply.text);
    assert.deepEqual(JSON.parse(reply.text), { accepted: 'refs/heads/main', after: AFTER, decision: 'started' });
    await worker.idle();
    assert.equal(requests.length, 1);
    assert.deepEqual(requests[0]?.reasons, [`webhook ${headers['x-github-delivery']} ${AFTER.slice(0, 12)}`]);
  });

  it('accepts a gitea push signed with the bare hex signature, on its route and on the auto-detecting one', async () => {
    await start();
    // Three different commits: a push for a commit a run already settled would be absorbed.
    const body = pushPayload('refs/heads/main', 'a'.repeat(40));
    const reply = await post(server, '/webhook/gitea', body, giteaHeaders(body));
    assert.equal(reply.status, 202, reply.text);
    await worker.idle();
    const second = pushPayload('refs/heads/main', 'b'.repeat(40));
    const auto = await post(server, '/webhook', second, giteaHeaders(second));
    assert.equal(auto.status, 202, auto.text);
    await worker.idle();
    const third = pushPayload('refs/heads/main', 'c'.repeat(40));
    const forgejo = { 'content-type': 'application/json', 'x-forgejo-event': 'push', 'x-forgejo-signature': hmacHex(SECRET, third) };
    assert.equal((await post(server, '/webhook/gitea', third, forgejo)).status, 202);
    await worker.idle();
    assert.equal(requests.length, 3);
  });

  it('accepts a form-encoded github push (payload=...) signed over the raw body', async () => {
    await start();
    const body = new URLSearchParams({ payload: pushPayload('refs/heads/main') }).toString();
    const headers = { ...githubHeaders(body), 'content-type': 'application/x-www-form-urlencoded' };
    const reply = await post(server, '/webhook/github', body, headers);
    assert.equal(reply.status, 202, reply.text);
    await worker.idle();
    assert.equal(requests.length, 1);
  });

  it('answers 401 to forged, tampered, malformed and missing signatures and runs nothing', async () => {
    await start();
    const body = pushPayload('refs/heads/main');
    const forged = githubHeaders(body, 'push', 'guessed-secret');
    const tampered = { ...githubHeaders(body), 'x-hub-signature-256': `sha256=${hmacHex(SECRET, pushPayload('refs/heads/other'))}` };
    const malformed = { ...githubHeaders(body), 'x-hub-signature-256': 'sha256=not-hex' };
    const bareOnGithub = { ...githubHeaders(body), 'x-hub-signature-256': hmacHex(SECRET, body) };
    const missing = githubHeaders(body);
    delete missing['x-hub-signature-256'];
    const giteaForged = giteaHeaders(body, 'guessed-secret');
    const giteaMissing = giteaHeaders(body);
    delete giteaMissing['x-gitea-signature'];
    const cases: [string, string, Record<string, string>, RegExp][] = [
      ['forged', '/webhook/github', forged, /signature does not match/],
      ['tampered', '/webhook/github', tampered, /signature does not match/],
      ['malformed', '/webhook/github', malformed, /malformed signature header x-hub-signature-256: expected sha256=<64 hex digits>/],
      ['bare hex on github', '/webhook/github', bareOnGithub, /malformed signature header x-hub-signature-256/],
      ['missing', '/webhook/github', missing, /missing signature header \(x-hub-signature-256\)/],
      ['gitea forged', '/webhook/gitea', giteaForged, /signature does not match/],
      ['gitea missing', '/webhook/gitea', giteaMissing, /missing signature header/],
    ];
    for (const [name, path, headers, message] of cases) {
      const reply = await post(server, path, body, headers);
      assert.equal(reply.status, 401, `${name}: ${reply.text}`);
      assert.match(reply.text, message, name);
      assert.ok(!reply.text.includes(SECRET), `${name} echoes the secret`);
    }
    assert.equal(worker.snapshot().runs, 0);
  });

  it('answers 413 to signed-looking bodies past 1 MiB, declared or streamed, before checking the signature', async () => {
    await start();
    const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
    const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmacHex(SECRET, big.toString())}` };
    const declared = await postRaw(server, '/webhook/github', big, headers, true);
    assert.equal(declared.status, 413, declared.text);
    assert.match(declared.text, /larger than 1048576 bytes/);
    const streamed = await postRaw(server, '/webhook/github', Buffer.alloc(4 * 1024 * 1024, 0x20), headers, false);
    assert.equal(streamed.status, 413, streamed.text);
    // Exactly 1 MiB is still read and checked.
    const atCap = await postRaw(server, '/webhook/github', Buffer.alloc(1024 * 1024, 0x20), headers, true);
    assert.equal(atCap.status, 401, atCap.text);
    assert.equal(worker.snapshot().runs, 0);
  });

  it('acknowledges and ignores pushes to other refs, deletions and other events', async () => {
    await start();
    const dev = pushPayload('refs/heads/dev');
    const ignored = await post(server, '/webhook/github', dev, githubHeaders(dev));
    assert.equal(ignored.status, 202);
    assert.deepEqual(JSON.parse(ignored.text), { ignored: 'ref refs/heads/dev is not watched' });
    const tag = pushPayload('refs/tags/main');
    assert.equal(JSON.parse((await post(server, '/webhook/github', tag, githubHeaders(tag))).text).ignored, 'ref refs/tags/main is not watched');
    const deleted = pushPayload('refs/heads/main', '0'.repeat(40));
    assert.deepEqual(JSON.parse((await post(server, '/webhook/github', deleted, githubHeaders(deleted))).text), { ignored: 'ref refs/heads/main was deleted' });
    const issue = JSON.stringify({ action: 'opened' });
    const other = await post(server, '/webhook/github', issue, githubHeaders(issue, 'issues'));
    assert.equal(other.status, 202);
    assert.deepEqual(JSON.parse(other.text), { ignored: 'event issues is not handled' });
    assert.equal(worker.snapshot().runs, 0);
  });

  it('answers a ping with 200 once its signature checks out', async () => {
    await start();
    const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const reply = await post(server, '/webhook/github', body, githubHeaders(body, 'ping'));
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.text), { pong: true });
    assert.equal((await post(server, '/webhook/github', body, githubHeaders(body, 'ping', 'wrong'))).status, 401);
    assert.equal(worker.snapshot().runs, 0);
  });

  it('answers 400 to a signed body that is not a push payload', async () => {
    await start();
    for (const body of ['not json', '[1,2]', JSON.stringify({ after: AFTER })]) {
      const reply = await post(server, '/webhook/github', body, githubHeaders(body));
      assert.equal(reply.status, 400, body);
    }
    assert.equal(worker.snapshot().runs, 0);
  });

  it('follows a tag pattern: matching tags trigger, other tags and branches do not', async () => {
    await start({ tagPattern: 'release-*' });
    const cases: [string, number][] = [
      ['refs/tags/release-2024.06.1', 1],
      ['refs/tags/nightly-2024.06.1', 0],
      ['refs/heads/release-2024.06.1', 0],
    ];
    for (const [ref, runs] of cases) {
      const before = worker.snapshot().runs;
      const body = pushPayload(ref);
      const reply = await post(server, '/webhook/github', body, githubHeaders(body));
      assert.equal(reply.status, 202, reply.text);
      await worker.idle();
      assert.equal(worker.snapshot().runs - before, runs, ref);
    }
  });

  it('turns a burst of 500 valid webhooks for one commit, 100 at a time, into one reconcile', async () => {
    await start();
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    const body = pushPayload('refs/heads/main');
    const replies: Reply[] = [];
    for (let wave = 0; wave < 5; wave += 1) {
      replies.push(...(await Promise.all(Array.from({ length: 100 }, () => post(server, '/webhook/github', body, githubHeaders(body))))));
    }
    assert.deepEqual(new Set(replies.map((reply) => reply.status)), new Set([202]));
    const decisions = replies.map((reply) => (JSON.parse(reply.text) as { decision: string }).decision);
    assert.equal(decisions.filter((decision) => decision === 'started').length, 1);
    open();
    await worker.idle();
    // The run reported AFTER as its revision at once: every delivery queued for that commit was absorbed.
    assert.equal(requests.length, 1);
    assert.ok(decisions.every((decision) => ['started', 'queued', 'absorbed'].includes(decision)), decisions.join());
  });

  it('answers 404 on the webhook routes when no secret is configured', async () => {
    worker = new ReconcileWorker({ run: async () => ({ result: 'applied', durationMs: 1 }) });
    server = await createControlServer({ listen: '127.0.0.1:0', worker, status: async () => ({}) });
    const body = pushPayload('refs/heads/main');
    const reply = await post(server, '/webhook/github', body, githubHeaders(body));
    assert.equal(reply.status, 404);
    assert.equal(worker.snapshot().runs, 0);
  });
});
