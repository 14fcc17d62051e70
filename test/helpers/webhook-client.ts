/**
 * A webhook sender for the tests: GitHub and Gitea push payloads signed with HMAC-SHA256 over their raw bytes,
 * sent with fetch or with node:http (chunked or declared, a body held back, or a connection left open).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest, type ClientRequest } from 'node:http';

/** The webhook secret of the tests. */
export const SECRET = 'whsec-do-not-echo-7f3a9c';
/** The commit the pushes announce by default. */
export const AFTER = '3f786850e387550fdab836ed7e6dc881de23001b';

/** The HMAC-SHA256 of raw bytes, hex. */
export function hmacHex(secret: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** A push payload as GitHub sends it. */
export function pushPayload(ref: string, after = AFTER): string {
  return JSON.stringify({ ref, before: '0'.repeat(39) + '1', after, repository: { full_name: 'ops/desired-state' }, pusher: { name: 'ana' } });
}

/** GitHub's headers for a body, with a fresh delivery id unless one is given. */
export function githubHeaders(body: string | Buffer, event = 'push', secret = SECRET, delivery = randomUUID()): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': `sha256=${hmacHex(secret, body)}`,
  };
}

/** Gitea's headers for a body: the signature is the bare hex. */
export function giteaHeaders(body: string, secret = SECRET): Record<string, string> {
  return { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-delivery': randomUUID(), 'x-gitea-signature': hmacHex(secret, body) };
}

/** An answer: status and text. */
export interface Reply {
  status: number;
  text: string;
}

/** POSTs a body with fetch. */
export async function post(url: string, body: string | Buffer, headers: Record<string, string>): Promise<Reply> {
  const response = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
  return { status: response.status, text: await response.text() };
}

/** A request whose answer may come before its body is sent: `answer` resolves with it, `request` sends the rest. */
export interface OpenRequest {
  request: ClientRequest;
  answer: Promise<Reply>;
}

/** Starts a POST with node:http and sends only its headers; the body is up to the caller. */
export function openPost(url: string, headers: Record<string, string>): OpenRequest {
  let request!: ClientRequest;
  const answer = new Promise<Reply>((resolve, reject) => {
    request = httpRequest(url, { method: 'POST', headers, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', reject);
  });
  request.flushHeaders();
  return { request, answer };
}

/** Sends a body with node:http, chunked when `declareLength` is false; resolves with the answer. */
export function postRaw(url: string, body: Buffer, headers: Record<string, string>, declareLength: boolean): Promise<Reply> {
  const { request, answer } = openPost(url, { ...headers, ...(declareLength ? { 'content-length': String(body.length) } : {}) });
  const chunk = 64 * 1024;
  let offset = 0;
  const writeMore = (): void => {
    // The server may close while the body is still being sent; the answer is what counts.
    if (request.destroyed) return;
    while (offset < body.length) {
      const piece = body.subarray(offset, offset + chunk);
      offset += chunk;
      if (!request.write(piece)) {
        request.once('drain', writeMore);
        return;
      }
    }
    request.end();
  };
  writeMore();
  return answer;
}
