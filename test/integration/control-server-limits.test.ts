/**
 * The control server against slow and greedy clients, over real sockets on 127.0.0.1: headers and bodies that
 * trickle are cut off at their timeouts, a cut-off body frees its slot, connections past the cap are closed as
 * they arrive, the defaults are the documented ones, and a stop closes a client still trickling once the grace
 * period is over.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon } from '../../reconciler/agent/daemon.js';
import { silentLogger } from '../../reconciler/run-context.js';
import { createControlServer, DEFAULT_SERVER_LIMITS, type ControlServer, type ServerLimits } from '../../reconciler/triggers/http-server.js';
import { ReconcileWorker } from '../../reconciler/triggers/worker.js';
import { SECRET, githubHeaders, postRaw, pushPayload } from '../helpers/webhook-client.js';

/** A raw client: what it received, and a promise that resolves once the server closed the connection. */
interface RawClient {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

async function rawClient(server: { port: number }, first: string): Promise<RawClient> {
  const socket = connect(server.port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(first);
  return { socket, received: () => text, closed };
}

/** Writes `piece` every 100 ms until the socket closes: a slowloris client. */
function trickle(client: RawClient, piece: string): void {
  const timer = setInterval(() => {
    if (client.socket.destroyed || client.socket.writableEnded) clearInterval(timer);
    else client.socket.write(piece);
  }, 100);
  void client.closed.then(() => clearInterval(timer));
}

/** Resolves with 'closed' when the client was disconnected, or 'still open' after a ceiling far above any limit. */
function closedWithin(client: RawClient, ceilingMs: number): Promise<'closed' | 'still open'> {
  return Promise.race([client.closed.then(() => 'closed' as const), sleep(ceilingMs).then(() => 'still open' as const)]);
}

describe('control server limits', function () {
  this.timeout(60_000);
  let server: ControlServer | undefined;
  const clients: RawClient[] = [];

  const start = async (limits: Partial<ServerLimits>): Promise<ControlServer> => {
    const worker = new ReconcileWorker({ run: async () => ({ result: 'applied', durationMs: 1 }) });
    server = await createControlServer({ listen: '127.0.0.1:0', worker, status: async () => ({}), webhook: { secret: SECRET, watch: { branch: 'main' } }, limits });
    return server;
  };

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    await server?.close(0);
    server = undefined;
  });

  it('uses the documented limits by default: 10 s for headers, 30 s per request, 256 connections, 8 bodies', async () => {
    const started = await start({});
    assert.deepEqual(started.limits, { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxConnections: 256, maxBodies: 8 });
    assert.deepEqual(started.limits, DEFAULT_SERVER_LIMITS);
  });

  it('closes a connection whose headers trickle past the headers timeout', async () => {
    const started = await start({ headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    const client = await rawClient(started, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    clients.push(client);
    trickle(client, 'X-Slow: 1\r\n');
    // Node checked these timeouts only every 30 s by default: a slow client stayed for up to a minute.
    assert.equal(await closedWithin(client, 15_000), 'closed');
    assert.match(client.received(), /^HTTP\/1\.1 408/);
  });

  it('closes a connection whose body trickles past the request timeout, and frees its body slot', async () => {
    const started = await start({ headersTimeoutMs: 500, requestTimeoutMs: 1_000, maxBodies: 1 });
    const body = pushPayload('refs/heads/main');
    const headers = Object.entries({ ...githubHeaders(body), 'content-length': String(body.length), host: 'x' })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    const client = await rawClient(started, `POST /webhook/github HTTP/1.1\r\n${headers}\r\n{`);
    clients.push(client);
    trickle(client, ' ');
    assert.equal(await closedWithin(client, 15_000), 'closed');
    // The one body slot is free again: a whole webhook is read and accepted.
    const reply = await postRaw(`${started.url}/webhook/github`, Buffer.from(body), githubHeaders(body), true);
    assert.equal(reply.status, 202, reply.text);
  });

  it('closes connections past the cap as they arrive and serves again once they are gone', async () => {
    const started = await start({ maxConnections: 5 });
    for (let i = 0; i < 5; i += 1) clients.push(await rawClient(started, 'GET /healthz HTTP/1.1\r\n'));
    const extra = await rawClient(started, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(await closedWithin(extra, 15_000), 'closed');
    assert.equal(extra.received(), '', 'the connection past the cap got no answer');
    for (const client of clients.splice(0)) client.socket.destroy();
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) {
      status = await fetch(`${started.url}/healthz`).then((response) => response.status, () => 0);
      if (status !== 200) await sleep(50);
    }
    assert.equal(status, 200);
  });

  it('stops even while a client trickles its headers: every connection is closed after the grace period', async () => {
    const daemon = await startDaemon({
      listen: '127.0.0.1:0',
      run: async () => ({ result: 'applied', durationMs: 1 }),
      readStatus: async () => ({}),
      log: silentLogger,
      poll: false,
      runAtStart: false,
      handleSignals: false,
      stopGraceMs: 300,
      // Timeouts far beyond the test: only the stop may end the slow client.
      httpLimits: { headersTimeoutMs: 120_000, requestTimeoutMs: 240_000 },
    });
    const client = await rawClient(daemon, 'GET /status HTTP/1.1\r\nHost: x\r\n');
    clients.push(client);
    trickle(client, 'X-Slow: 1\r\n');
    const stopped = daemon.stop().then(() => 'stopped' as const);
    assert.equal(await Promise.race([stopped, sleep(20_000).then(() => 'still stopping' as const)]), 'stopped');
    assert.equal(await closedWithin(client, 5_000), 'closed');
  });
});
