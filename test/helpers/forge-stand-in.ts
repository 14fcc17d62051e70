/**
 * A local forge for the fleet tests (node:http on 127.0.0.1): it keeps commit statuses and deployments the way
 * GitHub does, and checks every request against GitHub's published OpenAPI description (`@octokit/openapi`):
 * the path and method must be an operation of the API, the query parameters and the JSON body must match their
 * schemas, and the body may hold no key the operation does not define. Gitea's API is the same under `/api/v1`;
 * such requests are checked against the same operations. It can be taken down (connections refused) and up again.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { PROJECT_ROOT } from './paths.js';

/** One request the forge received. */
export interface ForgeRequest {
  method: string;
  /** The path as sent, with the `/api/v1` prefix for Gitea. */
  path: string;
  flavor: 'github' | 'gitea';
  /** The OpenAPI operation it matched (`repos/create-commit-status`), or undefined. */
  operation?: string;
  body?: Record<string, unknown>;
  authorized: boolean;
  /** Why the request does not match GitHub's description; empty when it does. */
  problems: string[];
  at: number;
}

/** A commit status as the forge keeps it. */
export interface StoredStatus {
  id: number;
  state: string;
  description: string | null;
  target_url: string | null;
  context: string;
  created_at: string;
}

interface Operation {
  operationId: string;
  parameters?: { name: string; in: string; required?: boolean; schema?: object }[];
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } & object }> };
}

interface Route {
  pattern: RegExp;
  names: string[];
  template: string;
  methods: Record<string, Operation>;
}

let routes: Route[] | undefined;
const validators = new Map<object, ValidateFunction>();
const ajv = new Ajv({ strict: false, allErrors: true });

/** The operations of api.github.com, read once (the dereferenced description: no $ref to follow). */
function githubRoutes(): Route[] {
  if (routes) return routes;
  const file = join(PROJECT_ROOT, 'node_modules/@octokit/openapi/generated/api.github.com.deref.json');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as { paths: Record<string, Record<string, Operation>> };
  routes = Object.entries(spec.paths).map(([template, methods]) => {
    const names: string[] = [];
    const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    return { pattern: new RegExp(`^${source}$`), names, template, methods };
  });
  // Literal paths before templated ones, as a router would.
  routes.sort((a, b) => a.names.length - b.names.length);
  return routes;
}

function validatorOf(schema: object): ValidateFunction {
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

/** Checks one request against GitHub's description; returns the operation and the problems. */
export function checkAgainstOpenApi(method: string, path: string, query: URLSearchParams, body: unknown): { operation?: string; template?: string; problems: string[] } {
  const problems: string[] = [];
  for (const route of githubRoutes()) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const operation = route.methods[method.toLowerCase()];
    if (!operation) return { template: route.template, problems: [`${method} is not an operation of ${route.template}`] };
    for (const parameter of operation.parameters ?? []) {
      if (parameter.in === 'query') {
        const value = query.get(parameter.name);
        if (value === null) {
          if (parameter.required) problems.push(`query parameter ${parameter.name} is missing`);
          continue;
        }
        const schema = parameter.schema as { type?: string } | undefined;
        const typed = schema?.type === 'integer' || schema?.type === 'number' ? Number(value) : schema?.type === 'boolean' ? value === 'true' : value;
        if (schema && !validatorOf(schema)(typed)) problems.push(`query parameter ${parameter.name}=${value} does not match its schema`);
      }
    }
    for (const known of [...query.keys()]) {
      if (!(operation.parameters ?? []).some((parameter) => parameter.in === 'query' && parameter.name === known)) problems.push(`unknown query parameter ${known}`);
    }
    const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
    if (bodySchema) {
      const validate = validatorOf(bodySchema);
      if (!validate(body)) problems.push(...(validate.errors ?? []).map((error) => `body${error.instancePath} ${error.message ?? 'is invalid'}`));
      const allowed = Object.keys(bodySchema.properties ?? {});
      if (body && typeof body === 'object') {
        for (const key of Object.keys(body)) if (!allowed.includes(key)) problems.push(`body has a key the operation does not define: ${key}`);
      }
    } else if (body !== undefined) {
      problems.push(`${operation.operationId} takes no body`);
    }
    return { operation: operation.operationId, template: route.template, problems };
  }
  return { problems: [`${method} ${path} is not a path of the GitHub API`] };
}

/** The stand-in. */
export interface ForgeStandIn {
  /** `http://127.0.0.1:<port>` (GitHub's API root); Gitea's is `${origin}/api/v1`. */
  origin: string;
  requests: ForgeRequest[];
  /** Statuses per commit, newest first. */
  statuses: Map<string, StoredStatus[]>;
  deployments: { id: number; sha: string; environment: string; statuses: string[] }[];
  /** The newest status of a context on a commit. */
  latest(sha: string, context: string): StoredStatus | undefined;
  /** Refuses connections until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the stand-in; `token` is the token the agents must send. */
export async function startForgeStandIn(token: string): Promise<ForgeStandIn> {
  githubRoutes();
  const requests: ForgeRequest[] = [];
  const statuses = new Map<string, StoredStatus[]>();
  const deployments: ForgeStandIn['deployments'] = [];
  let ids = 0;
  const sockets = new Set<Socket>();

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const flavor = url.pathname.startsWith('/api/v1/') ? 'gitea' : 'github';
    const path = flavor === 'gitea' ? url.pathname.slice('/api/v1'.length) : url.pathname;
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: Record<string, unknown> | undefined;
    const problems: string[] = [];
    if (text !== '') {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        problems.push('the body is not json');
      }
    }
    const method = request.method ?? 'GET';
    const checked = checkAgainstOpenApi(method, path, url.searchParams, body);
    problems.push(...checked.problems);
    const authorized = request.headers.authorization === `token ${token}`;
    if (body && typeof body.description === 'string' && body.description.length > 140) problems.push(`description is ${body.description.length} characters (GitHub allows 140)`);
    requests.push({ method, path: url.pathname, flavor, ...(checked.operation ? { operation: checked.operation } : {}), ...(body ? { body } : {}), authorized, problems, at: Date.now() });
    const send = (status: number, value: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(value));
    };
    if (!authorized) return send(401, { message: 'Bad credentials' });
    if (problems.length > 0) return send(422, { message: 'Validation Failed', errors: problems });
    const param = (name: string) => {
      const route = githubRoutes().find((candidate) => candidate.template === checked.template) as Route;
      const match = route.pattern.exec(path) as RegExpExecArray;
      return decodeURIComponent(match[route.names.indexOf(name) + 1] as string);
    };
    switch (checked.operation) {
      case 'repos/create-commit-status': {
        const sha = param('sha');
        const stored: StoredStatus = {
          id: (ids += 1),
          state: String(body?.state),
          description: typeof body?.description === 'string' ? body.description : null,
          target_url: typeof body?.target_url === 'string' ? body.target_url : null,
          context: typeof body?.context === 'string' ? body.context : 'default',
          created_at: new Date().toISOString(),
        };
        statuses.set(sha, [stored, ...(statuses.get(sha) ?? [])]);
        return send(201, stored);
      }
      case 'repos/get-combined-status-for-ref': {
        const sha = param('ref');
        const seen = new Set<string>();
        const latest = (statuses.get(sha) ?? []).filter((status) => !seen.has(status.context) && seen.add(status.context));
        const state = latest.some((status) => status.state === 'failure' || status.state === 'error') ? 'failure' : latest.every((status) => status.state === 'success') && latest.length > 0 ? 'success' : 'pending';
        // Gitea answers each status's state as `status`.
        const shown = flavor === 'gitea' ? latest.map(({ state: status, ...rest }) => ({ ...rest, status })) : latest;
        return send(200, { state, sha, total_count: latest.length, statuses: shown });
      }
      case 'repos/create-deployment': {
        const deployment = { id: (ids += 1), sha: String(body?.ref), environment: String(body?.environment), statuses: [] as string[] };
        deployments.push(deployment);
        return send(201, { id: deployment.id, sha: deployment.sha, ref: deployment.sha, environment: deployment.environment });
      }
      case 'repos/create-deployment-status': {
        const deployment = deployments.find((candidate) => candidate.id === Number(param('deployment_id')));
        if (!deployment) return send(404, { message: 'Not Found' });
        deployment.statuses.push(String(body?.state));
        return send(201, { id: (ids += 1), state: body?.state });
      }
      default:
        return send(404, { message: 'Not Found' });
    }
  };

  let server: Server = createServer();
  let port = 0;
  const listen = async () => {
    server = createServer((request, response) => {
      handle(request, response).catch((error: unknown) => {
        response.writeHead(500);
        response.end(String(error));
      });
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  };
  const stop = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  await listen();
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    statuses,
    deployments,
    latest: (sha, context) => statuses.get(sha)?.find((status) => status.context === context),
    down: stop,
    up: listen,
    close: stop,
  };
}
