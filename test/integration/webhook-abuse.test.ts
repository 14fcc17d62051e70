/**
 * Webhooks as an attacker sends them, over real HTTP on 127.0.0.1: unsigned bodies refused before a byte of them
 * is read, only a few bodies read at once, the signature checked over the raw bytes, redeliveries and replays of
 * a captured push that neither cancel the deployment of a newer commit nor add runs, and a burst for one commit
 * spread over seconds that gives at most two runs.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createControlServer, type ControlServer, type ServerLimits } from '../../reconciler/triggers/http-server.js';
import type { RunReport, RunRequest } from '../../reconciler/triggers/run-request.js';
import { ReconcileWorker } from '../../reconciler/triggers/worker.js';
import { AFTER, SECRET, githubHeaders, hmacHex, openPost, post, postRaw, pushPayload, type Reply } from '../helpers/webhook-client.js';
import { until } from '../helpers/wait.js';

const OLD = '1111111111111111111111111111111111111111';

describe('webhooks under abuse', function () {
  this.timeout(60_000);
  let server: ControlServer;
  let worker: ReconcileWorker;
  let requests: RunRequest[];
  /** What each run resolves and how long it takes (a fetch, then the rest). */
  let target: string;
  let runMs: number;

  const start = async (limits: Partial<ServerLimits> = {}): Promise<string> => {
    requests = [];
    worker = new ReconcileWorker({
      run: async (request): Promise<RunReport> => {
        requests.push(request);
        await sleep(runMs / 4);
        request.onRevision(target);
        await sleep(runMs);
        return { result: 'applied', revision: target, durationMs: runMs };
      },
    });
    server = await createControlServer({ listen: '127.0.0.1:0', worker, status: async () => ({}), webhook: { secret: SECRET, watch: { branch: 'main' } }, limits });
    return `${server.url}/webhook/github`;
  };

  beforeEach(() => {
    target = AFTER;
    runMs = 0;
  });

  afterEach(async () => {
    await worker.stop(5_000);
    await server.close(1_000);
  });

  it('refuses 200 unsigned or malformed pushes declaring 1 MiB bodies before reading a byte of them', async () => {
    const url = await start({ maxConnections: 512 });
    const declared = { 'content-type': 'application/json', 'content-length': String(1024 * 1024) };
    const opened = Array.from({ length: 200 }, (_, i) => {
      const headers = { ...declared, 'x-github-event': 'push', ...(i % 2 === 1 ? { 'x-hub-signature-256': 'sha256=zz' } : {}) };
      return openPost(url, headers);
    });
    const unknownSender = openPost(`${server.url}/webhook`, declared);
    // No body is ever sent: the answers can only come from the headers.
    const replies = await Promise.all(opened.map((open) => open.answer));
    for (const [i, reply] of replies.entries()) {
      assert.equal(reply.status, 401, reply.text);
      assert.match(reply.text, i % 2 === 1 ? /malformed signature header/ : /missing signature header/);
    }
    assert.equal((await unknownSender.answer).status, 400);
    for (const open of [...opened, unknownSender]) open.request.destroy();
    assert.equal(worker.snapshot().runs, 0);
  });

  it('reads at most maxBodies bodies at once, answers 503 past it, and takes bodies again once they are read', async () => {
    const url = await start({ maxBodies: 2 });
    const body = Buffer.from(pushPayload('refs/heads/main'));
    const headers = { ...githubHeaders(body), 'content-length': String(body.length) };
    const held = [openPost(url, headers), openPost(url, { ...githubHeaders(body), 'content-length': String(body.length) })];
    for (const open of held) open.request.write(body.subarray(0, 10));
    const refused = await until('a request refused for want of a body slot', async () => {
      const reply = await postRaw(url, body, githubHeaders(body), true);
      return reply.status === 503 ? reply : undefined;
    });
    assert.match(refused.text, /too many webhook bodies are being read at once/);
    for (const open of held) open.request.end(body.subarray(10));
    for (const reply of await Promise.all(held.map((open) => open.answer))) assert.equal(reply.status, 202, reply.text);
    assert.equal((await postRaw(url, body, githubHeaders(body), true)).status, 202);
  });

  it('checks the signature over the raw bytes: bodies that differ only in invalid utf-8 do not share one', async () => {
    const url = await start();
    const raw = (junk: number): Buffer =>
      Buffer.concat([Buffer.from(`{"ref":"refs/heads/main","after":"${AFTER}","note":"`), Buffer.from([junk]), Buffer.from('"}')]);
    const signed = raw(0xff);
    const twin = raw(0xfe);
    assert.equal(signed.toString('utf8'), twin.toString('utf8'), 'both decode to the same text');
    // A forge signs the bytes it sends, whatever they decode to.
    const genuine = await post(url, signed, githubHeaders(signed));
    assert.equal(genuine.status, 202, genuine.text);
    // A signature over the decoded text fits neither body's bytes.
    const decoded = Buffer.from(signed.toString('utf8'));
    const overDecoded = { ...githubHeaders(signed), 'x-hub-signature-256': `sha256=${hmacHex(SECRET, decoded)}` };
    assert.equal((await post(url, twin, overDecoded)).status, 401);
    const borrowed = { ...githubHeaders(twin), 'x-hub-signature-256': `sha256=${hmacHex(SECRET, signed)}` };
    assert.equal((await post(url, twin, borrowed)).status, 401);
  });

  it('answers a redelivered push once: the same delivery id triggers nothing more', async () => {
    const url = await start();
    target = 'f'.repeat(40);
    const body = pushPayload('refs/heads/main');
    const headers = githubHeaders(body);
    assert.equal(JSON.parse((await post(url, body, headers)).text).decision, 'started');
    await worker.idle();
    for (let i = 0; i < 5; i += 1) {
      const again = await post(url, body, headers);
      assert.equal(again.status, 202);
      assert.deepEqual(JSON.parse(again.text), { ignored: `delivery ${headers['x-github-delivery']} was already received` });
    }
    await worker.idle();
    assert.equal(requests.length, 1);
  });

  it('never cancels the run deploying a new commit while a captured push for an old one is replayed', async () => {
    target = AFTER;
    runMs = 400;
    const url = await start();
    const captured = pushPayload('refs/heads/main', OLD);
    const sameDelivery = githubHeaders(captured);
    const fresh = pushPayload('refs/heads/main', AFTER);
    assert.equal(JSON.parse((await post(url, fresh, githubHeaders(fresh))).text).decision, 'started');
    // Replayed as captured (same delivery id) and with forged delivery ids (the id is outside the signature).
    const replies: Reply[] = [];
    for (let i = 0; i < 20; i += 1) {
      replies.push(await post(url, captured, sameDelivery), await post(url, captured, githubHeaders(captured)));
      await sleep(30);
    }
    assert.ok(replies.every((reply) => reply.status === 202));
    await worker.idle();
    assert.ok(requests.every((request) => !request.signal.aborted), 'a replayed hint cancelled a run');
    const last = worker.snapshot().lastRun;
    assert.equal(last?.cancelled, undefined);
    assert.equal(last?.revision, AFTER);
  });

  it('gives at most two runs for a burst of 500 webhooks for one commit spread over a few seconds', async () => {
    runMs = 150;
    const url = await start();
    const body = pushPayload('refs/heads/main');
    for (let wave = 0; wave < 25; wave += 1) {
      const replies = await Promise.all(Array.from({ length: 20 }, () => post(url, body, githubHeaders(body))));
      assert.ok(replies.every((reply) => reply.status === 202));
      await sleep(100);
    }
    await worker.idle();
    assert.ok(requests.length <= 2, `${requests.length} runs`);
  });
});
