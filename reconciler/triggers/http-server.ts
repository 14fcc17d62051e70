/**
 * The daemon's HTTP endpoints: the fleet page at `/`, `/healthz`, `/status`, `/metrics`, `POST /reconcile` (loopback only, optionally with
 * a token) and the push webhooks.
 * Plain node:http with hard limits: headers and whole requests are timed out as documented, connections and the
 * bodies read at once are capped, and a stop closes every connection once its grace period is over. Every request
 * that wants a reconcile goes to the worker.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeliveryLog } from './delivery-log.js';
import { FLEET_PAGE_CSP } from '../fleet/fleet-page.js';
import { handleWebhook, BodyIncompleteError, BodyTooLargeError, readBody, type Forge, type WebhookOptions } from './webhook.js';
import type { TriggerLogger } from './run-request.js';
import type { ReconcileWorker } from './worker.js';

/** Options of the control server. */
export interface ControlServerOptions {
  /** `host:port` (`[::1]:port` for IPv6); default DEFAULT_LISTEN. Port 0 picks a free port. */
  listen?: string;
  worker: ReconcileWorker;
  /** The status document, served as `/status` (the worker's own state is added as `daemon`). */
  status: () => Promise<object>;
  /** The Prometheus text for `GET /metrics`; without it the route answers 404. */
  metrics?: () => Promise<string>;
  /** The fleet page's HTML for `GET /`; without it the route answers 404. */
  page?: () => Promise<string>;
  /** Without it the webhook routes answer 404: webhooks are never accepted unsigned. */
  webhook?: WebhookOptions;
  /** When set, `POST /reconcile` also needs `Authorization: Bearer <token>` (besides a loopback peer). */
  reconcileToken?: string;
  /** Overrides of DEFAULT_SERVER_LIMITS. */
  limits?: Partial<ServerLimits>;
  log?: TriggerLogger;
}

/** The limits of the control server. */
export interface ServerLimits {
  /** Time a client has to send a request's headers. */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, headers and body. */
  requestTimeoutMs: number;
  /** Connections open at once; past it, new connections are closed as they arrive. */
  maxConnections: number;
  /** Request bodies read at once (webhooks and `POST /reconcile`); past it, `503`. */
  maxBodies: number;
}

/** The limits docs/daemon.md promises: 10 s for headers, 30 s in all, 256 connections, 8 bodies (8 MiB) at once. */
export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxConnections: 256, maxBodies: 8 };

/** How long a plain `close()` lets open requests finish before their connections are closed. */
const DEFAULT_CLOSE_GRACE_MS = 5_000;

/** A listening control server. */
export interface ControlServer {
  host: string;
  port: number;
  /** `http://host:port`, for tests and logs. */
  url: string;
  /** The limits in force. */
  limits: Readonly<ServerLimits>;
  /**
   * Stops accepting connections and ends idle ones; open requests may finish within `graceMs` (default 5 s), then
   * every connection left is closed. Resolves once all are gone.
   */
  close(graceMs?: number): Promise<void>;
}

/** Loopback only, unless configured otherwise (e.g. the Tailscale IP); never a public interface by default. */
export const DEFAULT_LISTEN = '127.0.0.1:9321';

/** The largest `POST /reconcile` body. */
const MAX_CONTROL_BYTES = 64 * 1024;

const WEBHOOK_ROUTES: Record<string, Forge> = { '/webhook': 'auto', '/webhook/github': 'github', '/webhook/gitea': 'gitea' };

/** Splits `host:port` (or `[v6]:port`). */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new RangeError(`listen address must be host:port, got ${JSON.stringify(listen)}`);
  return { host: (match[1] ?? match[2]) as string, port };
}

/** Whether a peer address is loopback: 127.0.0.0/8, ::1, or either mapped into IPv6. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return /^127(\.\d{1,3}){3}$/.test(v4) || address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/** Starts the control server and resolves once it listens. */
export async function createControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { host, port } = parseListen(options.listen ?? DEFAULT_LISTEN);
  const limits: ServerLimits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
  let reading = 0;
  const guards: RequestGuards = {
    admitBody: () => {
      if (reading >= limits.maxBodies) return undefined;
      reading += 1;
      let released = false;
      return () => {
        if (!released) reading -= 1;
        released = true;
      };
    },
    deliveries: new DeliveryLog(),
  };
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: 5_000,
      // Node checks both timeouts on this interval (30 s by default), which let slow clients stay for up to a minute.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    (request, response) => {
      route(request, response, options, guards).catch((error: unknown) => {
        if (error instanceof BodyIncompleteError || request.socket.destroyed) {
          // A slow or vanished client: its connection is gone, there is nobody to answer.
          options.log?.info({ remote: request.socket.remoteAddress, path: pathOf(request) }, 'control request closed before its body ended');
          response.destroy();
          return;
        }
        options.log?.error({ err: error, path: pathOf(request) }, 'control request failed');
        if (!response.headersSent) send(response, 500, { error: 'internal error' });
        else response.destroy();
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  await listen(server, host, port);
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    host: bound.address,
    port: bound.port,
    url: `http://${shownHost}:${bound.port}`,
    limits,
    close: (graceMs = DEFAULT_CLOSE_GRACE_MS) =>
      new Promise<void>((resolve, reject) => {
        const cutoff = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close((error) => {
          clearTimeout(cutoff);
          if (error) reject(error);
          else resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/** What every request shares: the body slots and the deliveries seen lately. */
interface RequestGuards {
  admitBody: () => (() => void) | undefined;
  deliveries: DeliveryLog;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function route(request: IncomingMessage, response: ServerResponse, options: ControlServerOptions, guards: RequestGuards): Promise<void> {
  const path = pathOf(request);
  const method = request.method ?? 'GET';
  if (path === '/healthz') {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(response, 'GET, HEAD');
    // Liveness: the daemon answers and its worker takes triggers. A stuck host shows in /status, not here.
    const state = options.worker.snapshot().state;
    const alive = state !== 'stopping' && state !== 'stopped';
    return sendText(response, alive ? 200 : 503, alive ? 'ok\n' : `${state}\n`);
  }
  if (path === '/status') {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(response, 'GET, HEAD');
    return send(response, 200, { ...(await options.status()), daemon: options.worker.snapshot() });
  }
  if (path === '/metrics' && options.metrics) {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(response, 'GET, HEAD');
    return sendText(response, 200, await options.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
  }
  if (path === '/' && options.page) {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(response, 'GET, HEAD');
    return sendPage(response, await options.page());
  }
  if (path === '/reconcile') {
    if (method !== 'POST') return methodNotAllowed(response, 'POST');
    return manualReconcile(request, response, options, guards);
  }
  const forge = WEBHOOK_ROUTES[path];
  if (forge) {
    if (!options.webhook) return send(response, 404, { error: 'webhooks are not configured' });
    if (method !== 'POST') return methodNotAllowed(response, 'POST');
    return webhook(request, response, forge, { ...options, webhook: options.webhook }, guards);
  }
  send(response, 404, { error: 'not found' });
}

/** `POST /reconcile[?now=1]`, body optionally `{"now": true}`: from loopback only, with the token when one is set. */
async function manualReconcile(request: IncomingMessage, response: ServerResponse, options: ControlServerOptions, guards: RequestGuards): Promise<void> {
  if (!isLoopback(request.socket.remoteAddress)) {
    options.log?.warn({ remote: request.socket.remoteAddress }, 'refused POST /reconcile from a non-loopback address');
    return send(response, 403, { error: 'POST /reconcile is only accepted from loopback' });
  }
  if (options.reconcileToken !== undefined && !hasToken(request, options.reconcileToken)) {
    options.log?.warn({ remote: request.socket.remoteAddress }, 'refused POST /reconcile without the right token');
    response.setHeader('www-authenticate', 'Bearer');
    return send(response, 401, { error: 'POST /reconcile needs the reconcile token: authorization: Bearer <token>' });
  }
  const release = guards.admitBody();
  if (!release) {
    response.setHeader('retry-after', '1');
    return send(response, 503, { error: 'too many request bodies are being read at once; retry later' });
  }
  let body: Buffer;
  try {
    body = await readBody(request, MAX_CONTROL_BYTES);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return send(response, 413, { error: error.message });
    throw error;
  } finally {
    release();
  }
  let now = ['1', 'true'].includes(new URL(request.url ?? '/', 'http://localhost').searchParams.get('now') ?? '');
  if (body.length > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return send(response, 400, { error: 'POST /reconcile body must be json, e.g. {"now": true}' });
    }
    if (parsed !== null && typeof parsed === 'object' && (parsed as { now?: unknown }).now === true) now = true;
  }
  const ignoreWaves = now && wantsIgnoreWaves(request, body);
  const decision = options.worker.trigger(ignoreWaves ? 'manual (now, ignoring waves)' : now ? 'manual (now)' : 'manual', { force: now, ...(ignoreWaves ? { ignoreWaves } : {}) });
  if (decision === 'refused') return send(response, 503, { error: 'the daemon is stopping' });
  send(response, 202, { decision, force: now, ...(ignoreWaves ? { ignoreWaves } : {}) });
}

/** `?ignoreWaves=1` or `{"ignoreWaves": true}`: apply without waiting for the earlier waves (with `now` only). */
function wantsIgnoreWaves(request: IncomingMessage, body: Buffer): boolean {
  if (['1', 'true'].includes(new URL(request.url ?? '/', 'http://localhost').searchParams.get('ignoreWaves') ?? '')) return true;
  try {
    const parsed: unknown = body.length > 0 ? JSON.parse(body.toString('utf8')) : undefined;
    return parsed !== null && typeof parsed === 'object' && (parsed as { ignoreWaves?: unknown }).ignoreWaves === true;
  } catch {
    return false;
  }
}

/** Whether the request carries `Authorization: Bearer <token>`, compared in constant time. */
function hasToken(request: IncomingMessage, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (!match || !token) return false;
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(match[1] as string), digest(token));
}

async function webhook(
  request: IncomingMessage,
  response: ServerResponse,
  forge: Forge,
  options: ControlServerOptions & { webhook: WebhookOptions },
  guards: RequestGuards,
): Promise<void> {
  const result = await handleWebhook(request, forge, options.webhook, guards);
  const remote = request.socket.remoteAddress;
  if (result.status === 401 || result.status === 413 || result.status === 503) {
    if (result.status === 503) response.setHeader('retry-after', '1');
    options.log?.warn({ remote, status: result.status, reason: result.body.error }, 'webhook refused');
    return send(response, result.status, result.body);
  }
  if (!result.push) {
    options.log?.info({ remote, status: result.status, ...result.body }, 'webhook answered without a reconcile');
    return send(response, result.status, result.body);
  }
  const { delivery, after, ref } = result.push;
  const reason = `webhook ${delivery} ${after ? after.slice(0, 12) : ref}`;
  const decision = options.worker.trigger(reason, after ? { newerRevisionHint: after } : {});
  options.log?.info({ remote, delivery, ref, after, decision }, 'webhook push');
  if (decision === 'refused') return send(response, 503, { error: 'the daemon is stopping' });
  send(response, result.status, { ...result.body, decision });
}

function pathOf(request: IncomingMessage): string {
  return new URL(request.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/';
}

function methodNotAllowed(response: ServerResponse, allow: string): void {
  response.setHeader('allow', allow);
  send(response, 405, { error: `method not allowed; use ${allow}` });
}

/** Answers with JSON. A request whose body was not read to the end gets its connection closed, not drained. */
function send(response: ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  const { headers } = response.req;
  const hasBody = Number(headers['content-length'] ?? 0) > 0 || headers['transfer-encoding'] !== undefined;
  const close = hasBody && !response.req.complete;
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...(close ? { connection: 'close' } : {}),
  });
  response.end(text);
}

/** The page's own headers: no script, no framing, no referrer, never cached. */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': FLEET_PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function sendPage(response: ServerResponse, page: string): void {
  response.writeHead(200, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(page) });
  response.end(page);
}

function sendText(response: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  response.end(text);
}
