/**
 * The daemon over real HTTP on 127.0.0.1: `/healthz`, `/status`, `POST /reconcile` (loopback only, optionally
 * with a token, `now` reaching the run as force), polls held back by the backoff while manual triggers run, and stops (a call or SIGTERM)
 * that abort the running reconcile once the grace period is over.
 */
import assert from 'node:assert/strict';
import { startDaemon, type Daemon, type DaemonOptions } from '../../reconciler/agent/daemon.js';
import { createControlServer, isLoopback, parseListen } from '../../reconciler/triggers/http-server.js';
import { RunCancelledError, type RunReport, type RunRequest, type TriggerEvent } from '../../reconciler/triggers/run-request.js';
import { ReconcileWorker } from '../../reconciler/triggers/worker.js';
import { silentLogger } from '../../reconciler/run-context.js';

const STATUS = { host: 'lod-prod', updatedAt: '2024-06-01T10:00:00.000Z', lastApplied: { revision: 'a'.repeat(40), generation: 7, at: '2024-06-01T10:00:00.000Z' }, history: [] };

/** A fake reconcile: records each request; `outcome` decides how each run ends (default: applied at once). */
function fakeRun(outcome: (request: RunRequest, index: number) => Promise<Partial<RunReport>> = async () => ({})) {
  const requests: RunRequest[] = [];
  const run = async (request: RunRequest): Promise<RunReport> => {
    requests.push(request);
    return { result: 'applied', durationMs: 1, ...(await outcome(request, requests.length - 1)) };
  };
  return { requests, run };
}

function untilAborted(signal: AbortSignal): Promise<Partial<RunReport>> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve({ result: 'failed', retry: 'transient' }), { once: true }));
}

describe('daemon over http', function () {
  this.timeout(180_000);
  let daemon: Daemon | undefined;

  const start = async (options: Partial<DaemonOptions> & Pick<DaemonOptions, 'run'>): Promise<Daemon> => {
    daemon = await startDaemon({
      listen: '127.0.0.1:0',
      readStatus: async () => STATUS,
      log: silentLogger,
      poll: false,
      runAtStart: false,
      handleSignals: false,
      ...options,
    });
    return daemon;
  };

  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
  });

  it('listens on the loopback port it was given and reconciles once at startup', async () => {
    const { requests, run } = fakeRun();
    const started = await start({ run, runAtStart: true });
    assert.equal(started.host, '127.0.0.1');
    assert.ok(started.port > 0);
    await started.worker.idle();
    assert.deepEqual(requests.map((request) => request.reasons), [['startup']]);
  });

  it('answers /healthz with ok and /status with the status document and the worker state', async () => {
    const { run } = fakeRun();
    const { url, worker } = await start({ run });
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    worker.trigger('manual');
    await worker.idle();
    const status = await fetch(`${url}/status`);
    assert.equal(status.status, 200);
    assert.match(status.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await status.json()) as typeof STATUS & { daemon: { state: string; runs: number; lastRun: { result: string; reasons: string[] } } };
    const { daemon: state, ...document } = body;
    assert.deepEqual(document, STATUS);
    assert.equal(state.state, 'idle');
    assert.equal(state.runs, 1);
    assert.equal(state.lastRun.result, 'applied');
    assert.deepEqual(state.lastRun.reasons, ['manual']);
    assert.equal((await fetch(`${url}/nowhere`)).status, 404);
    assert.equal((await fetch(`${url}/metrics`)).status, 404, 'no metrics provider, no route');
    assert.equal((await fetch(`${url}/status`, { method: 'POST' })).status, 405);
  });

  it('serves the metrics text it is given on /metrics', async () => {
    const { run } = fakeRun();
    const { url } = await start({ run, metrics: async () => 'edge_reconciler_up 1\n' });
    const metrics = await fetch(`${url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(await metrics.text(), 'edge_reconciler_up 1\n');
  });

  it('runs a reconcile on POST /reconcile from loopback, with now reaching the run as force', async () => {
    const { requests, run } = fakeRun();
    const { url, worker } = await start({ run });
    const plain = await fetch(`${url}/reconcile`, { method: 'POST' });
    assert.equal(plain.status, 202);
    assert.deepEqual(await plain.json(), { decision: 'started', force: false });
    await worker.idle();
    const body = await fetch(`${url}/reconcile`, { method: 'POST', body: JSON.stringify({ now: true }), headers: { 'content-type': 'application/json' } });
    assert.equal(body.status, 202);
    await worker.idle();
    const query = await fetch(`${url}/reconcile?now=1`, { method: 'POST' });
    assert.equal(query.status, 202);
    await worker.idle();
    assert.deepEqual(
      requests.map((request) => [request.reasons, request.force]),
      [
        [['manual'], false],
        [['manual (now)'], true],
        [['manual (now)'], true],
      ],
    );
    assert.equal((await fetch(`${url}/reconcile`, { method: 'POST', body: '{now' })).status, 400);
    assert.equal((await fetch(`${url}/reconcile`)).status, 405);
    assert.equal(requests.length, 3);
  });

  it('requires the reconcile token on POST /reconcile when one is set, even from loopback', async () => {
    const { requests, run } = fakeRun();
    const token = 'rt-9f2c4e1a7b3d5f60';
    const { url, worker } = await start({ run, reconcileToken: token });
    const cases: [string, Record<string, string>, number][] = [
      ['no token', {}, 401],
      ['wrong token', { authorization: 'Bearer rt-0000000000000000' }, 401],
      ['a prefix of it', { authorization: `Bearer ${token.slice(0, 8)}` }, 401],
      ['basic scheme', { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` }, 401],
    ];
    for (const [name, headers, status] of cases) {
      const reply = await fetch(`${url}/reconcile`, { method: 'POST', headers });
      assert.equal(reply.status, status, name);
      const text = await reply.text();
      assert.match(text, /needs the reconcile token/, name);
      assert.ok(!text.includes(token), `${name}: the token was echoed`);
    }
    assert.equal(requests.length, 0);
    const accepted = await fetch(`${url}/reconcile`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(accepted.status, 202);
    await worker.idle();
    assert.equal(requests.length, 1);
  });

  it('accepts POST /reconcile only from loopback addresses', () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(address), true, address);
    for (const address of ['10.0.0.5', '100.64.1.2', '192.168.1.1', '::ffff:10.0.0.1', 'fe80::1', '128.0.0.1', undefined]) {
      assert.equal(isLoopback(address), false, String(address));
    }
  });

  it('parses listen addresses and refuses malformed ones', () => {
    assert.deepEqual(parseListen('127.0.0.1:9420'), { host: '127.0.0.1', port: 9420 });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListen('100.64.0.7:9420'), { host: '100.64.0.7', port: 9420 });
    for (const bad of ['127.0.0.1', ':9420', '127.0.0.1:99999', 'host:port']) assert.throws(() => parseListen(bad), /listen address must be host:port/, bad);
  });

  it('holds polls back after a transient failure but runs a manual trigger at once', async () => {
    const { requests, run } = fakeRun(async (_request, index) => (index === 0 ? { result: 'failed', retry: 'transient' } : {}));
    // A backoff far longer than the test: only polls and the manual trigger can start runs.
    const started = await start({ run, runAtStart: true, poll: { intervalMs: 5, jitterMs: 2 }, backoff: { initialMs: 600_000, maxMs: 600_000 } });
    const { worker, url } = started;
    const polls: TriggerEvent[] = [];
    // Wait for three polls held back by the backoff.
    await new Promise<void>((resolve) => {
      worker.on('trigger', (event) => {
        if (!event.automatic) return;
        polls.push(event);
        if (polls.filter((poll) => poll.decision === 'deferred').length === 3) resolve();
      });
    });
    assert.equal(requests.length, 1, 'no poll ran during the backoff');
    assert.equal(worker.snapshot().state, 'backing-off');
    const manual = await fetch(`${url}/reconcile`, { method: 'POST' });
    assert.deepEqual(await manual.json(), { decision: 'started', force: false });
    await worker.idle();
    assert.ok(requests.length >= 2);
    const reasons = requests[1]?.reasons ?? [];
    assert.equal(reasons[0], 'retry after 1 transient failure');
    assert.ok(reasons.filter((reason) => reason.startsWith('poll ')).length >= 3, reasons.join(', '));
    assert.equal(reasons.at(-1), 'manual');
    assert.equal(worker.snapshot().failures, 0);
    // The success ended the backoff: the next poll runs.
    const nextPoll = new Promise<TriggerEvent>((resolve) => {
      worker.on('trigger', (event) => {
        if (event.automatic && event.decision !== 'queued') resolve(event);
      });
    });
    assert.equal((await nextPoll).decision, 'started');
  });

  it('aborts the running reconcile once the stop grace period is over', async () => {
    const { requests, run } = fakeRun(async (request) => untilAborted(request.signal));
    const started = await start({ run, runAtStart: true, stopGraceMs: 20 });
    // The startup run began before startDaemon returned.
    assert.equal(started.worker.snapshot().state, 'running');
    await started.stop();
    await started.closed;
    assert.equal(requests.length, 1);
    const signal = requests[0]?.signal;
    assert.equal(signal?.aborted, true);
    assert.ok(signal.reason instanceof RunCancelledError);
    assert.equal(signal.reason.why, 'shutdown');
    await assert.rejects(fetch(`${started.url}/healthz`));
  });

  it('stops on SIGTERM, aborting the run after the grace period, and removes its signal handlers', async () => {
    const listeners = process.listenerCount('SIGTERM');
    const { requests, run } = fakeRun(async (request) => untilAborted(request.signal));
    const started = await start({ run, runAtStart: true, stopGraceMs: 20, handleSignals: true });
    assert.equal(process.listenerCount('SIGTERM'), listeners + 1);
    assert.equal(started.worker.snapshot().state, 'running');
    process.kill(process.pid, 'SIGTERM');
    await started.closed;
    assert.equal(requests[0]?.signal.aborted, true);
    assert.equal(process.listenerCount('SIGTERM'), listeners);
  });

  it('answers /healthz with 503 while the worker is stopping', async () => {
    let release!: () => void;
    const worker = new ReconcileWorker({ run: () => new Promise<RunReport>((resolve) => (release = () => resolve({ result: 'applied', durationMs: 1 }))) });
    const server = await createControlServer({ listen: '127.0.0.1:0', worker, status: async () => STATUS });
    try {
      worker.trigger('manual');
      const stopped = worker.stop(60_000);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 503);
      assert.equal(await health.text(), 'stopping\n');
      assert.equal((await fetch(`${server.url}/reconcile`, { method: 'POST' })).status, 503);
      release();
      await stopped;
    } finally {
      await server.close();
    }
  });
});
