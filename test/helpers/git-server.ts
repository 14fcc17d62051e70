/**
 * Real git servers on 127.0.0.1 for the git-source tests: smart HTTP (`git http-backend` behind node:http, an
 * optional token required as HTTP Basic auth), and a silent server that accepts connections and never answers.
 * Both listen on port 0 and stop cleanly: open connections are destroyed and running backends killed.
 */
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { dirname, join } from 'node:path';

/** A git smart-HTTP server serving every repo under its root. */
export interface GitHttpServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The URL of a repo under the root, e.g. `url('desired.git')`. */
  url(repo: string): string;
  /** Every request seen: method, path, and whether it carried the right credentials. */
  requests: { method: string; path: string; authorized: boolean }[];
  close(): Promise<void>;
}

/** Options of the HTTP server. */
export interface GitHttpOptions {
  /** Require `Authorization: Basic base64(<user>:<token>)` with any user name; answer 401 otherwise. */
  token?: string;
}

function authorized(request: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = request.headers.authorization ?? '';
  const match = /^Basic (.+)$/i.exec(header);
  if (!match) return false;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1) === token;
}

/** Runs `git http-backend` as a CGI for one request and relays its answer. */
function serveBackend(root: string, request: IncomingMessage, response: ServerResponse, children: Set<ChildProcess>): void {
  const url = new URL(request.url ?? '/', 'http://127.0.0.1');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      REQUEST_METHOD: request.method ?? 'GET',
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      ...(request.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(request.headers['content-encoding']) } : {}),
      ...(request.headers['git-protocol'] ? { GIT_PROTOCOL: String(request.headers['git-protocol']) } : {}),
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  children.add(child);
  child.on('close', () => children.delete(child));
  request.pipe(child.stdin);
  child.stdin.on('error', () => {});
  let head = Buffer.alloc(0);
  let headersSent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      response.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else response.setHeader(name, value);
    }
    response.writeHead(status);
    headersSent = true;
    response.write(head.subarray(end + 4));
  });
  child.stdout.on('end', () => {
    if (!headersSent) response.writeHead(502);
    response.end();
  });
}

/** Starts a smart-HTTP git server for the bare repos under `root`. */
export async function startGitHttpServer(root: string, options: GitHttpOptions = {}): Promise<GitHttpServer> {
  const children = new Set<ChildProcess>();
  const requests: GitHttpServer['requests'] = [];
  const server = createHttpServer((request, response) => {
    const ok = authorized(request, options.token);
    requests.push({ method: request.method ?? 'GET', path: request.url ?? '/', authorized: ok });
    if (!ok) {
      request.resume();
      response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('unauthorized\n');
      return;
    }
    serveBackend(root, request, response, children);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (repo) => `${origin}/${repo}`,
    requests,
    async close() {
      for (const child of children) child.kill('SIGKILL');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP server that accepts connections and never answers (for timeouts); records what clients sent. */
export interface SilentServer {
  port: number;
  /** Everything received, per connection, as latin1 text. */
  received: string[];
  close(): Promise<void>;
}

/** Starts a silent server on 127.0.0.1. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  const received: string[] = [];
  const server = createTcpServer((socket) => {
    const index = received.push('') - 1;
    sockets.add(socket);
    socket.on('data', (chunk) => (received[index] += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A bare repo under a server root and a working repo that commits, tags and pushes to it as a developer would. */
export interface Upstream {
  /** The bare repo's path (also a valid source). */
  bare: string;
  work: string;
  /** Runs git in the working repo (fixed identity, no global or system config); returns trimmed stdout. */
  git(args: string[], env?: Record<string, string>): Promise<string>;
  /** Writes files, commits them (extra args such as `-S` go to `git commit`); returns the commit id. */
  commit(message: string, files?: Record<string, string>, args?: string[], env?: Record<string, string>): Promise<string>;
  /** Pushes refspecs to the bare repo (`--force` allowed). */
  push(...refspecs: string[]): Promise<void>;
}

/** Creates `<root>/<name>` (bare) and a working repo next to it on branch `release`. */
export async function createUpstream(root: string, name = 'desired.git', home = root): Promise<Upstream> {
  const env = {
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Release Manager',
    GIT_AUTHOR_EMAIL: 'release@example.com',
    GIT_COMMITTER_NAME: 'Release Manager',
    GIT_COMMITTER_EMAIL: 'release@example.com',
  };
  const bare = join(root, name);
  await execa('git', ['init', '-q', '--bare', '-b', 'release', bare], { env });
  const work = await mkdtemp(join(root, 'work-'));
  const git = async (args: string[], extra: Record<string, string> = {}) =>
    (await execa('git', ['-C', work, ...args], { env: { ...env, ...extra } })).stdout.trim();
  await git(['init', '-q', '-b', 'release']);
  let counter = 0;
  return {
    bare,
    work,
    git,
    async commit(message, files = { 'edge.yaml': `version: 1\n# ${message} ${++counter}\n` }, args = [], extra = {}) {
      for (const [path, text] of Object.entries(files)) {
        await mkdir(dirname(join(work, path)), { recursive: true });
        await writeFile(join(work, path), text);
      }
      await git(['add', '-A']);
      await git(['commit', '-q', '--allow-empty', '-m', message, ...args], extra);
      return git(['rev-parse', 'HEAD']);
    },
    async push(...refspecs) {
      await git(['push', '-q', bare, ...refspecs]);
    },
  };
}
