/**
 * Push webhooks from GitHub and Gitea (and Forgejo): refuse a request without a well-formed signature before
 * reading a byte of its body, read the body under a hard cap (and only a few at a time), check the HMAC-SHA256 of
 * its raw bytes in constant time, drop a delivery id seen before, and turn a push to the watched ref into a hint.
 * The payload is only a hint: the agent always fetches and decides itself, so nothing in it is trusted beyond
 * "something was pushed".
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { normaliseTagPattern, tagGlob } from '../source/git-refs.js';
import type { DeliveryLog } from './delivery-log.js';

/** The forges whose webhooks are understood; `auto` tells them apart by their headers. */
export type Forge = 'github' | 'gitea' | 'auto';

/** The ref the agent follows: a release branch, or the tags matching a pattern. */
export type WatchedRef = { branch: string } | { tagPattern: string };

/** Options of the webhook endpoints. */
export interface WebhookOptions {
  /** The shared secret configured on the forge; never logged, never echoed. */
  secret: string;
  watch: WatchedRef;
  /** The app repos whose branch a live app follows: a push there is a trigger too (asked at each request). */
  apps?: () => readonly AppWatch[];
}

/** An app that follows a branch of its repo (kind: app, `follow:`). */
export interface AppWatch {
  app: string;
  /** The repo's URLs as the agent knows them (as declared, and as fetched after the host config's insteadOf). */
  repos: string[];
  branch: string;
}

/** A push to the watched ref: what the trigger is told. */
export interface PushHint {
  forge: 'github' | 'gitea';
  /** The forge's delivery id, sanitized for logs. */
  delivery: string;
  ref: string;
  /** The pushed commit, when the payload carries a well-formed one (never for an app push: it is no desired-state commit). */
  after?: string;
  /** Set for a push to a followed app branch: the app. */
  app?: string;
}

/** What the HTTP server lends the webhook handler: body slots shared by all requests, and recent deliveries. */
export interface WebhookGuards {
  /** Takes a slot to read a body in; returns its release, or undefined when every slot is taken (503). */
  admitBody?: () => (() => void) | undefined;
  /** Deliveries seen lately: a push whose delivery id is in it is answered and ignored. */
  deliveries?: DeliveryLog;
}

/** What to answer, and the push to act on when there is one. */
export interface WebhookResult {
  status: number;
  body: Record<string, unknown>;
  push?: PushHint;
}

/** The largest webhook body read (1 MiB); past it the request gets 413 and the rest is not read. */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;

/** A body that went past its cap. */
export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body is larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** A request whose connection closed (a timeout, the client gone) before its body ended. */
export class BodyIncompleteError extends Error {
  constructor() {
    super('the connection closed before the request body ended');
    this.name = 'BodyIncompleteError';
  }
}

/**
 * Reads a request body into memory, refusing (by rejecting with BodyTooLargeError) as soon as the declared
 * length or the bytes received pass `limit`. On refusal the stream is paused; the caller answers and closes.
 * A connection closed before the body ended (a timeout, the client gone) rejects too, so no reader waits forever.
 */
export function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        request.pause();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => onError(new BodyIncompleteError());
    const cleanup = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}

/**
 * Handles one webhook request: headers first (sender, signature shape), then the body, then the signature, then
 * the push. Never throws for a bad request; answers it.
 */
export async function handleWebhook(request: IncomingMessage, forge: Forge, options: WebhookOptions, guards: WebhookGuards = {}): Promise<WebhookResult> {
  const detected = forge === 'auto' ? detectForge(request) : forge;
  if (!detected) return { status: 400, body: { error: 'unknown webhook sender: no x-github-event or x-gitea-event header' } };
  const signature = signatureOf(request, detected);
  if (!signature) return { status: 401, body: { error: `missing signature header (${signatureHeaderNames(detected).join(' or ')})` } };
  if (!signature.value) return { status: 401, body: { error: `malformed signature header ${signature.header}: ${signature.expected}` } };
  const release = guards.admitBody ? guards.admitBody() : () => undefined;
  if (!release) return { status: 503, body: { error: 'too many webhook bodies are being read at once; retry later' } };
  let body: Buffer;
  try {
    body = await readBody(request, MAX_WEBHOOK_BYTES);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return { status: 413, body: { error: error.message } };
    throw error;
  } finally {
    release();
  }
  if (!verifySignature(options.secret, body, signature.value)) return { status: 401, body: { error: 'signature does not match' } };
  return decide(request, detected, body, options, guards.deliveries);
}

/**
 * Whether the signature (`sha256=<64 hex digits>`) is the HMAC-SHA256 of the body's raw bytes under the secret,
 * compared in constant time. The bytes are never decoded first: two bodies that decode alike differ here.
 */
export function verifySignature(secret: string, body: Buffer, signature: string): boolean {
  const match = /^sha256=([0-9a-f]{64})$/i.exec(signature);
  if (!secret || body.length === 0 || !match) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(match[1] as string, 'hex'));
}

/** Whether a pushed ref (`refs/heads/...`, `refs/tags/...`) is the one the agent follows. */
export function isWatchedRef(ref: string, watch: WatchedRef): boolean {
  if ('branch' in watch) {
    const branch = watch.branch.startsWith('refs/heads/') ? watch.branch : `refs/heads/${watch.branch}`;
    return ref === branch;
  }
  if (!ref.startsWith('refs/tags/')) return false;
  // The same glob the fetch uses, so a webhook and a poll agree on what is watched.
  return tagGlob(normaliseTagPattern(watch.tagPattern)).test(ref.slice('refs/tags/'.length));
}


function detectForge(request: IncomingMessage): 'github' | 'gitea' | undefined {
  if (request.headers['x-gitea-event'] || request.headers['x-forgejo-event']) return 'gitea';
  if (request.headers['x-github-event']) return 'github';
  return undefined;
}

function signatureHeaderNames(forge: 'github' | 'gitea'): string[] {
  return forge === 'github' ? ['x-hub-signature-256'] : ['x-gitea-signature', 'x-forgejo-signature', 'x-hub-signature-256'];
}

/** A signature header found on a request. */
interface SignatureHeader {
  header: string;
  /** `sha256=<64 hex digits>`; undefined when the header is not of its forge's shape. */
  value?: string;
  expected: string;
}

/** The signature as `sha256=<hex>`: GitHub sends it so; Gitea and Forgejo send the bare hex. */
function signatureOf(request: IncomingMessage, forge: 'github' | 'gitea'): SignatureHeader | undefined {
  for (const name of signatureHeaderNames(forge)) {
    const value = header(request, name);
    if (!value) continue;
    if (name === 'x-hub-signature-256') {
      const expected = 'expected sha256=<64 hex digits>';
      return /^sha256=[0-9a-f]{64}$/i.test(value) ? { header: name, value, expected } : { header: name, expected };
    }
    const expected = 'expected 64 hex digits';
    return /^[0-9a-f]{64}$/i.test(value) ? { header: name, value: `sha256=${value}`, expected } : { header: name, expected };
  }
  return undefined;
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first?.trim() || undefined;
}

/** After the signature checked out: pings are answered, pushes to the watched ref become hints. */
function decide(request: IncomingMessage, forge: 'github' | 'gitea', body: Buffer, options: WebhookOptions, deliveries?: DeliveryLog): WebhookResult {
  const { watch } = options;
  const event = forge === 'github' ? header(request, 'x-github-event') : (header(request, 'x-gitea-event') ?? header(request, 'x-forgejo-event'));
  const delivery = sanitize(
    forge === 'github' ? header(request, 'x-github-delivery') : (header(request, 'x-gitea-delivery') ?? header(request, 'x-forgejo-delivery')),
  );
  if (event === 'ping') return { status: 200, body: { pong: true } };
  if (event !== 'push') return { status: 202, body: { ignored: `event ${sanitize(event)} is not handled` } };
  // A delivery without an id cannot be told from another; every id-carrying one counts once.
  if (delivery !== 'unknown' && deliveries?.record(forge, delivery)) return { status: 202, body: { ignored: `delivery ${delivery} was already received` } };
  const payload = parsePayload(request, body);
  if (!payload) return { status: 400, body: { error: 'push payload is not a json object' } };
  const ref = typeof payload.ref === 'string' ? payload.ref : undefined;
  if (!ref) return { status: 400, body: { error: 'push payload has no ref' } };
  // The ref is echoed only after it was checked against a strict shape, so nothing unexpected is reflected.
  const shownRef = /^refs\/[\w./-]{1,200}$/.test(ref) ? ref : '(unprintable ref)';
  if (!isWatchedRef(ref, watch)) {
    const app = payload.deleted === true ? undefined : followedApp(payload, ref, options.apps?.() ?? []);
    // A push to a branch a live app follows: a hint to reconcile, which resolves the branch itself.
    if (app) return { status: 202, body: { accepted: ref, app }, push: { forge, delivery, ref, app } };
    return { status: 202, body: { ignored: `ref ${shownRef} is not watched` } };
  }
  if (payload.deleted === true) return { status: 202, body: { ignored: `ref ${shownRef} was deleted` } };
  const after = typeof payload.after === 'string' && /^[0-9a-f]{40}([0-9a-f]{24})?$/i.test(payload.after) ? payload.after.toLowerCase() : undefined;
  if (after && /^0+$/.test(after)) return { status: 202, body: { ignored: `ref ${shownRef} was deleted` } };
  const push: PushHint = { forge, delivery, ref, ...(after ? { after } : {}) };
  return { status: 202, body: { accepted: ref, ...(after ? { after } : {}) }, push };
}

/** The app whose followed branch this push is to, from the payload's repository URLs; undefined when none. */
function followedApp(payload: Record<string, unknown>, ref: string, apps: readonly AppWatch[]): string | undefined {
  if (apps.length === 0 || !ref.startsWith('refs/heads/')) return undefined;
  const repository = payload.repository;
  if (repository === null || typeof repository !== 'object') return undefined;
  const urls = ['clone_url', 'ssh_url', 'html_url', 'git_url', 'url']
    .map((key) => (repository as Record<string, unknown>)[key])
    .filter((value): value is string => typeof value === 'string' && value.length < 2048)
    .map(repoKey);
  const branch = ref.slice('refs/heads/'.length);
  return apps.find((app) => app.branch === branch && app.repos.some((repo) => urls.includes(repoKey(repo))))?.app;
}

/**
 * A repo URL reduced to what names the repo: no scheme, user, port, trailing slash or `.git`, lower case
 * (`https://git.example.com/edge/lod.git`, `git@git.example.com:edge/lod` and `ssh://git@git.example.com:22/edge/lod.git`
 * all become `git.example.com/edge/lod`).
 */
export function repoKey(url: string): string {
  return url
    .trim()
    .toLowerCase()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//, '')
    .replace(/^[^@/]+@/, '')
    .replace(/^([^/:]+):(?!\d+\/)/, '$1/')
    .replace(/^([^/:]+):\d+\//, '$1/')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
}

/** JSON bodies, and the form encoding both forges can also send (`payload=<json>`). */
function parsePayload(request: IncomingMessage, body: Buffer): Record<string, unknown> | undefined {
  const type = header(request, 'content-type') ?? '';
  let text = body.toString('utf8');
  if (type.startsWith('application/x-www-form-urlencoded')) text = new URLSearchParams(text).get('payload') ?? '';
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A header value safe to log and echo: a delivery id or event name, nothing else. */
function sanitize(value: string | undefined): string {
  if (!value) return 'unknown';
  const clean = value.replace(/[^\w.-]/g, '').slice(0, 64);
  return clean || 'unknown';
}
