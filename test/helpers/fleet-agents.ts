/**
 * A small fleet on loopback for the fleet page's tests: the example desired-state repo served over HTTP, with the
 * hosts' addresses moved to 127.0.0.2-5, and one `serve` process per started host (sandbox root, own state dir,
 * activation recorded), each listening on its own address and the same port, as agents on a mesh do.
 * model-gateway (127.0.0.5) is never started: the page must show it unreachable.
 */
import { createServer } from 'node:net';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';
import { writeSecretsDir } from './cli.js';
import { createUpstream, startGitHttpServer, type GitHttpServer, type Upstream } from './git-server.js';
import { CLI, EXAMPLE_REPO } from './paths.js';
import { until } from './wait.js';
import { exampleAppsConfig } from './app-repos.js';

/** The hosts of the example repo and their loopback addresses. */
export const FLEET_ADDRESSES: Record<string, string> = {
  'caddy-router': '127.0.0.4',
  'lod-prod': '127.0.0.3',
  'lod-standby': '127.0.0.2',
  'model-gateway': '127.0.0.5',
};

/** The webhook secret every agent of the fleet is configured with (it must never reach the page). */
export const FLEET_WEBHOOK_SECRET = 'whs-77a1c9-fleet-webhook-secret';

/** One running agent. */
export interface FleetAgent {
  host: string;
  url: string;
  config: string;
  stateDir: string;
  root: string;
  process: ResultPromise;
  stderr: string[];
}

/** The fleet: its repo, its agents, and a way to stop it all. */
export interface LoopbackFleet {
  upstream: Upstream;
  server: GitHttpServer;
  port: number;
  secretsDir: string;
  agents: Map<string, FleetAgent>;
  start(host: string, extra?: Record<string, unknown>): Promise<FleetAgent>;
  status(host: string): Promise<StatusDocument>;
  /** Asks an agent for a reconcile and waits until its last attempt is of `revision`. */
  reconcile(host: string, revision: string): Promise<StatusDocument>;
  stop(): Promise<void>;
}

/** The parts of /status the tests read. */
export interface StatusDocument {
  host: string;
  lastApplied?: { revision: string; generation: number };
  lastAttempted?: { result: string; revision?: string; code?: string; drift?: string[] };
}

/*
 * The page's scenario is about what the page shows, not about waves: the agents do not wait for each other (the
 * example repo's waves would hold lod-prod back behind the never started model-gateway), and they dial their peers
 * at the fleet's port.
 */

/** A port free on every given loopback address (the kernel's choice on the first, checked on the rest). */
async function freePort(addresses: readonly string[]): Promise<number> {
  const tryBind = (host: string, port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, host, () => {
        const bound = (server.address() as { port: number }).port;
        server.close(() => resolve(bound));
      });
    });
  for (;;) {
    const port = await tryBind(addresses[0] as string, 0);
    if (port === undefined) continue;
    const rest = await Promise.all(addresses.slice(1).map((host) => tryBind(host, port)));
    if (rest.every((bound) => bound === port)) return port;
  }
}

/** Creates the repo (addresses on loopback) and its git server; starts no agent yet. */
export async function createLoopbackFleet(): Promise<LoopbackFleet> {
  const base = await mkdtemp(join(tmpdir(), 'edge-fleet-'));
  const secretsDir = await writeSecretsDir();
  const upstream = await createUpstream(base);
  await cp(EXAMPLE_REPO, upstream.work, { recursive: true });
  for (const [host, address] of Object.entries(FLEET_ADDRESSES)) {
    const file = join(upstream.work, 'hosts', `${host}.yaml`);
    await writeFile(file, (await readFile(file, 'utf8')).replace(/^address: .*$/m, `address: ${address}`));
  }
  await upstream.commit('example desired state on loopback addresses', {});
  await upstream.push('release');
  const server = await startGitHttpServer(base);
  const port = await freePort(Object.values(FLEET_ADDRESSES));
  const agents = new Map<string, FleetAgent>();

  const status = async (host: string): Promise<StatusDocument> => {
    const agent = agents.get(host);
    if (!agent) throw new Error(`${host} is not started`);
    return (await (await fetch(`${agent.url}/status`)).json()) as StatusDocument;
  };

  const start = async (host: string, extra: Record<string, unknown> = {}): Promise<FleetAgent> => {
    const root = await mkdtemp(join(base, `root-${host}-`));
    const stateDir = await mkdtemp(join(base, `state-${host}-`));
    const webhookFile = join(stateDir, 'webhook-secret');
    await writeFile(webhookFile, `${FLEET_WEBHOOK_SECRET}\n`, { mode: 0o600 });
    const config = join(stateDir, 'config.yaml');
    await writeFile(
      config,
      stringify({
        repo: server.url('desired.git'),
        ref: 'release',
        host,
        root,
        stateDir,
        secretsDir,
        listen: `${FLEET_ADDRESSES[host]}:${port}`,
        waves: { enabled: false, peerPort: port },
        // The example's apps come from their own repos, made from examples/apps.
        apps: await exampleAppsConfig(),
        webhook: { enabled: true, secretFile: webhookFile },
        poll: { enabled: false },
        drift: { policy: 'heal', watch: false },
        ...extra,
      }),
      { mode: 0o600 },
    );
    const child = execa(process.execPath, [CLI, 'serve', '--config', config, '--dry-activate'], { reject: false, buffer: false });
    const stderr: string[] = [];
    let url: string | undefined;
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        stderr.push(line);
        if (line.startsWith('{')) url ??= (JSON.parse(line) as { url?: string }).url;
      }
    });
    const agent: FleetAgent = { host, url: '', config, stateDir, root, process: child, stderr };
    agents.set(host, agent);
    agent.url = await until(`${host}'s agent to listen`, async () => {
      if (child.exitCode !== null) throw new Error(`serve of ${host} exited: ${stderr.join('\n')}`);
      return url;
    });
    return agent;
  };

  const reconcile = async (host: string, revision: string): Promise<StatusDocument> => {
    const agent = agents.get(host) as FleetAgent;
    await fetch(`${agent.url}/reconcile`, { method: 'POST' });
    return until(`${host} to attempt ${revision.slice(0, 8)}`, async () => {
      const document = await status(host);
      return document.lastAttempted?.revision === revision ? document : undefined;
    });
  };

  return {
    upstream,
    server,
    port,
    secretsDir,
    agents,
    start,
    status,
    reconcile,
    async stop() {
      for (const agent of agents.values()) agent.process.kill('SIGTERM');
      await Promise.all([...agents.values()].map((agent) => agent.process));
      await server.close();
      await rm(base, { recursive: true, force: true });
      await rm(secretsDir, { recursive: true, force: true });
    },
  };
}

/**
 * The scenario the page tests look at: lod-standby suspended on the first commit, lod-prod on the second with a
 * drifted file reported, caddy-router refusing the second (its template needs a var the commit removed) and
 * staying on the first, model-gateway never started.
 */
export async function startFleetScenario(fleet: LoopbackFleet): Promise<{ first: string; second: string }> {
  const first = await fleet.upstream.git(['rev-parse', 'HEAD']);
  await Promise.all([
    fleet.start('lod-standby'),
    fleet.start('lod-prod', { drift: { policy: 'report', watch: false } }),
    fleet.start('caddy-router'),
  ]);
  for (const host of ['lod-standby', 'lod-prod', 'caddy-router']) {
    await until(`${host} to apply the first commit`, async () => ((await fleet.status(host)).lastApplied?.revision === first ? true : undefined));
  }
  const standby = fleet.agents.get('lod-standby') as FleetAgent;
  const suspended = await execa(process.execPath, [CLI, 'suspend', '--config', standby.config, '--reason', 'disk swap <b>tonight</b>', '--by', 'ops'], { reject: false });
  if (suspended.exitCode !== 0) throw new Error(`suspend failed: ${suspended.stderr}`);

  const router = join(fleet.upstream.work, 'hosts', 'caddy-router.yaml');
  await writeFile(router, (await readFile(router, 'utf8')).replace(/^vars:\n {2}acmeEmail: .*\n/m, ''));
  const lod = join(fleet.upstream.work, 'hosts', 'lod-prod.yaml');
  await writeFile(lod, (await readFile(lod, 'utf8')).replace('workers: 4', 'workers: 6'));
  const second = await fleet.upstream.commit('lod-prod: 6 workers; router: drop acmeEmail', {});
  await fleet.upstream.push('release');
  const prod = await fleet.reconcile('lod-prod', second);
  if (prod.lastApplied?.revision !== second) throw new Error(`lod-prod did not apply the second commit: ${JSON.stringify(prod)}`);
  const refused = await fleet.reconcile('caddy-router', second);
  if (refused.lastApplied?.revision !== first) throw new Error(`caddy-router left the first commit: ${JSON.stringify(refused)}`);
  return { first, second };
}
