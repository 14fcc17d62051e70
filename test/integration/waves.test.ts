/**
 * Waves across three agents on loopback (the agent of `serve`, started from a host config file, each with its own
 * sandbox root, state dir and port; systemctl recorded and the health checks real, since `--dry-activate` skips
 * them and a commit could not fail health), one host per wave, posting to the local forge stand-in whose every
 * request is checked against GitHub's OpenAPI description (w1 and w2 on GitHub's paths, w3 on Gitea's): a good
 * commit goes through the waves in order; a commit failing health in wave 1 never reaches waves 2 and 3 (the forge
 * shows one failure and two pending); a fix resumes them; with the forge down the hosts converge just the same (the
 * peers' /status decides) and the statuses arrive once it is back; `reconcile --now --ignore-waves` overrides.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { runCli, writeSecretsDir } from '../helpers/cli.js';
import { startForgeStandIn, type ForgeStandIn } from '../helpers/forge-stand-in.js';
import { createUpstream, startGitHttpServer, type GitHttpServer, type Upstream } from '../helpers/git-server.js';
import { SystemctlShim } from '../helpers/systemctl-shim.js';
import { startAgent as startRealAgent, type Agent as RunningAgent } from '../../reconciler/agent/agent.js';
import { loadHostConfig } from '../../reconciler/config/host-config.js';
import { until } from '../helpers/wait.js';

const TOKEN = 'ghs_wavesTestToken0123456789abcdef';
const HOSTS = ['w1', 'w2', 'w3'] as const;
type HostName = (typeof HOSTS)[number];
const CONF = 'etc/sysctl.d/90-wave.conf';

interface RunView {
  result: string;
  revision?: string;
  code?: string;
  reason?: string;
}
interface StatusView {
  lastApplied?: { revision: string; generation: number; at: string };
  lastAttempted?: RunView;
  wave?: { index: number; waitingFor?: { wave: number; hosts: string[]; since: string }; halted?: { wave: number; host: string; reason: string } };
  history: RunView[];
}

interface Agent {
  host: HostName;
  url: string;
  root: string;
  config: string;
  running: RunningAgent;
  /** Every log line, as JSON. */
  logs: string[];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('waves: three agents, one per wave, and the forge', function () {
  this.timeout(240_000);
  let base: string;
  let upstream: Upstream;
  let git: GitHttpServer;
  let forge: ForgeStandIn;
  let app: Server;
  let appPort: number;
  let secretsDir: string;
  let tokenFile: string;
  const ports = new Map<HostName, number>();
  const agents = new Map<HostName, Agent>();
  const revisions: Record<string, string> = {};

  /** A commit of the tiny fleet repo: release `n`, healthy or not. */
  const release = async (n: number, healthy: boolean): Promise<string> => {
    const revision = await upstream.commit(`release ${n}${healthy ? '' : ' (fails health)'}`, {
      'roles/app/templates/wave.conf.hbs': `# release ${n}\n`,
      'roles/app/role.yaml': stringify({
        resources: [{ kind: 'file', name: 'wave-conf', target: `/${CONF}`, template: 'wave.conf.hbs' }],
        health: [{ name: 'app-http', type: 'http', url: `http://127.0.0.1:${appPort}/${healthy ? 'ok' : 'broken'}`, retries: 1, timeoutSeconds: 2 }],
      }),
    });
    await upstream.push('release');
    return revision;
  };

  const startAgent = async (host: HostName): Promise<Agent> => {
    const root = await mkdtemp(join(base, `root-${host}-`));
    const stateDir = await mkdtemp(join(base, `state-${host}-`));
    const config = join(stateDir, 'config.yaml');
    const port = ports.get(host) as number;
    await writeFile(
      config,
      stringify({
        repo: git.url('desired.git'),
        ref: 'release',
        host,
        root,
        stateDir,
        secretsDir,
        listen: `127.0.0.1:${port}`,
        poll: { enabled: false },
        drift: { policy: 'heal', watch: false },
        // w3 speaks Gitea's API (under /api/v1), the others GitHub's: one forge stand-in serves both.
        forge: { kind: host === 'w3' ? 'gitea' : 'github', baseUrl: forge.origin, tokenFile, owner: 'acme', repo: 'desired-state', fleetUrl: `http://127.0.0.1:${port}/` },
        waves: { recheckSeconds: 1, timeoutSeconds: 600, peers: Object.fromEntries(HOSTS.map((name) => [name, `http://127.0.0.1:${ports.get(name)}`])) },
      }),
      { mode: 0o600 },
    );
    const logs: string[] = [];
    const line = (level: string) => (object: object, message?: string) => logs.push(JSON.stringify({ level, ...object, msg: message }));
    const running = await startRealAgent(await loadHostConfig(config), {
      log: { info: line('info'), warn: line('warn'), error: line('error') },
      runner: new SystemctlShim(),
      handleSignals: false,
    });
    const agent: Agent = { host, url: running.daemon.url, root, config, running, logs };
    assert.equal(agent.url, `http://127.0.0.1:${port}`);
    agents.set(host, agent);
    return agent;
  };

  const agent = (host: HostName) => agents.get(host) as Agent;
  const status = async (host: HostName) => (await (await fetch(`${agent(host).url}/status`)).json()) as StatusView;
  const metrics = async (host: HostName) => (await fetch(`${agent(host).url}/metrics`)).text();
  const trigger = async (host: HostName) => {
    const response = await fetch(`${agent(host).url}/reconcile`, { method: 'POST' });
    assert.equal(response.status, 202);
  };
  const live = (host: HostName, revision: string) =>
    until(`${host} live on ${revision.slice(0, 8)}`, async () => ((await status(host)).lastApplied?.revision === revision ? true : undefined), 120_000);
  const attempted = (host: HostName, revision: string, result: string) =>
    until(`${host} ${result} on ${revision.slice(0, 8)}`, async () => {
      const now = await status(host);
      return now.lastAttempted?.revision === revision && now.lastAttempted.result === result ? now : undefined;
    }, 120_000);
  const conf = (host: HostName) => readFile(join(agent(host).root, CONF), 'utf8');
  /** The statuses of a commit, oldest first, as `host state description`. */
  const timeline = (revision: string) =>
    [...(forge.statuses.get(revision) ?? [])].reverse().map((s) => `${s.context.replace('edge-reconciler/', '')} ${s.state} ${s.description ?? ''}`);
  /**
   * The forge saw the waves in order: w1's success before w2's, w2's before w3's, and no host of a later wave
   * began applying before the wave ahead of it succeeded. (An unsent `applying` may be replaced by the outcome.)
   */
  const assertWaveOrder = async (revision: string) => {
    const lines = timeline(revision);
    const success = HOSTS.map((host) => lines.findIndex((line) => line.startsWith(`${host} success`)));
    assert.ok(success.every((index) => index >= 0) && (success[0] as number) < (success[1] as number) && (success[1] as number) < (success[2] as number), lines.join('\n'));
    lines.forEach((line, index) => {
      if (line.startsWith('w2 pending applying')) assert.ok(index > (success[0] as number), lines.join('\n'));
      if (line.startsWith('w3 pending applying')) assert.ok(index > (success[1] as number), lines.join('\n'));
    });
    const at = await Promise.all(HOSTS.map(async (host) => Date.parse((await status(host)).lastApplied?.at ?? '')));
    assert.ok((at[0] as number) < (at[1] as number) && (at[1] as number) < (at[2] as number), `applied out of wave order: ${at.join(', ')}`);
  };

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-waves-'));
    secretsDir = await writeSecretsDir({});
    await chmod(secretsDir, 0o700);
    tokenFile = join(base, 'forge-token');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    app = createServer((request, response) => {
      response.writeHead(request.url === '/ok' ? 200 : 503);
      response.end(request.url === '/ok' ? 'ok' : 'broken');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', () => resolve()));
    appPort = (app.address() as AddressInfo).port;
    forge = await startForgeStandIn(TOKEN);
    for (const host of HOSTS) ports.set(host, await freePort());
    upstream = await createUpstream(base);
    await upstream.commit('the fleet', {
      'edge.yaml': stringify({ version: 1, health: { deadlineSeconds: 6, intervalSeconds: 0.2 }, waves: [['w1'], ['w2'], ['w3']] }),
      ...Object.fromEntries(HOSTS.map((host) => [`hosts/${host}.yaml`, stringify({ address: '127.0.0.1', roles: ['app'] })])),
    });
    revisions.good = await release(1, true);
    git = await startGitHttpServer(base);
  });

  after(async () => {
    await Promise.all([...agents.values()].map((each) => each.running.stop()));
    await git?.close();
    await forge?.close();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    await rm(base, { recursive: true, force: true });
    await rm(secretsDir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const each of agents.values()) console.log(`--- ${each.host} ---\n${each.logs.slice(-30).join('\n')}`);
    console.log(forge.requests.map((r) => `${r.method} ${r.path} ${JSON.stringify(r.body ?? {})} ${r.problems.join('; ')}`).join('\n'));
  });

  it('a good commit goes through the waves in order', async () => {
    const good = revisions.good as string;
    // Waves 2 and 3 start first: they must wait for wave 1, and say so.
    await startAgent('w3');
    await startAgent('w2');
    const waiting = await attempted('w2', good, 'waiting');
    assert.match(waiting.lastAttempted?.reason ?? '', /^waiting for wave 1: w1/);
    assert.equal(waiting.wave?.index, 2);
    assert.deepEqual(waiting.wave?.waitingFor?.hosts, ['w1']);
    assert.equal(waiting.wave?.waitingFor?.wave, 1);
    assert.match(await metrics('w2'), /^edge_reconciler_wave_waiting 1$/m);
    assert.equal((await attempted('w3', good, 'waiting')).wave?.waitingFor?.wave, 1);
    await until('w2 waiting on the forge', async () => (forge.latest(good, 'edge-reconciler/w2')?.description?.startsWith('waiting for wave 1: w1') ? true : undefined));
    assert.equal(forge.latest(good, 'edge-reconciler/w2')?.state, 'pending');

    await startAgent('w1');
    for (const host of HOSTS) await live(host, good);
    for (const host of HOSTS) assert.equal(await conf(host), '# release 1\n');
    await until('every success on the forge', async () => (HOSTS.every((host) => forge.latest(good, `edge-reconciler/${host}`)?.state === 'success') ? true : undefined));
    await assertWaveOrder(good);
    assert.equal((await status('w2')).wave?.waitingFor, undefined);
    assert.match(await metrics('w2'), /^edge_reconciler_wave_waiting 0$/m);
    assert.equal(forge.latest(good, 'edge-reconciler/w3')?.target_url, `${agent('w3').url}/`);
  });

  it('a commit failing health in wave 1 never reaches waves 2 and 3', async () => {
    const bad = await release(2, false);
    revisions.bad = bad;
    for (const host of HOSTS) await trigger(host);
    const failed = await attempted('w1', bad, 'rolled-back');
    assert.equal(failed.lastAttempted?.code, 'HEALTH_FAILED');
    const halted = await attempted('w2', bad, 'halted');
    assert.match(halted.lastAttempted?.reason ?? '', /^halted: wave 1 failed on w1/);
    assert.deepEqual({ ...halted.wave?.halted, reason: undefined }, { wave: 1, host: 'w1', reason: undefined });
    assert.equal((await attempted('w3', bad, 'halted')).wave?.halted?.host, 'w1');
    assert.match(await metrics('w3'), /^edge_reconciler_wave_halted 1$/m);
    for (const host of HOSTS) assert.equal((await status(host)).lastApplied?.revision, revisions.good, `${host} left the good commit`);
    for (const host of HOSTS) assert.equal(await conf(host), '# release 1\n');
    // The forge: one failure (wave 1), two pending that say why.
    await until('the forge to show the halt', async () =>
      forge.latest(bad, 'edge-reconciler/w1')?.state === 'failure' && ['w2', 'w3'].every((host) => /^halted/.test(forge.latest(bad, `edge-reconciler/${host}`)?.description ?? '')) ? true : undefined,
    );
    const states = HOSTS.map((host) => forge.latest(bad, `edge-reconciler/${host}`)?.state);
    assert.deepEqual(states, ['failure', 'pending', 'pending']);
    assert.match(forge.latest(bad, 'edge-reconciler/w1')?.description ?? '', /^rolled-back: HEALTH_FAILED: check app-http failed/);
    // Waves 2 and 3 never began to apply it.
    assert.equal(timeline(bad).filter((line) => / applying$/.test(line) && !line.startsWith('w1')).length, 0, timeline(bad).join('\n'));
  });

  it('a fix resumes the waves', async () => {
    const fix = await release(3, true);
    revisions.fix = fix;
    for (const host of HOSTS) await trigger(host);
    for (const host of HOSTS) await live(host, fix);
    for (const host of HOSTS) assert.equal(await conf(host), '# release 3\n');
    await until('every success on the forge', async () => (HOSTS.every((host) => forge.latest(fix, `edge-reconciler/${host}`)?.state === 'success') ? true : undefined));
    await assertWaveOrder(fix);
    const at = await Promise.all(HOSTS.map(async (host) => Date.parse((await status(host)).lastApplied?.at ?? '')));
    console.log(`      wave 1 live to wave 3 live (re-check every 1 s, statuses through the forge): ${(at[2] as number) - (at[0] as number)} ms`);
    assert.deepEqual((await status('w3')).wave, { index: 3 });
    assert.match(await metrics('w3'), /^edge_reconciler_wave_halted 0$/m);
  });

  it('the forge down changes nothing on the hosts: the peers decide, and the statuses arrive once it is back', async () => {
    await forge.down();
    let next: string;
    try {
      next = await release(4, true);
      for (const host of HOSTS) await trigger(host);
      for (const host of HOSTS) await live(host, next);
      for (const host of HOSTS) assert.equal(await conf(host), '# release 4\n');
      const applied = await Promise.all(HOSTS.map(async (host) => Date.parse((await status(host)).lastApplied?.at ?? '')));
      assert.ok((applied[0] as number) < (applied[1] as number) && (applied[1] as number) < (applied[2] as number), `applied out of wave order: ${applied.join(', ')}`);
      for (const host of HOSTS) {
        const history = (await status(host)).history.filter((run) => run.revision === next);
        assert.ok(!history.some((run) => ['failed', 'rolled-back', 'invalid'].includes(run.result)), `${host}: ${JSON.stringify(history)}`);
      }
      assert.ok(agent('w2').logs.some((line) => line.includes('asking the peers over the mesh')), 'w2 did not ask its peers');
      await until('failed posts counted', async () => (/^edge_reconciler_forge_status_posts_total\{result="failed"\} [1-9]/m.test(await metrics('w1')) ? true : undefined));
    } finally {
      await forge.up();
    }
    await until('the statuses delivered after the outage', async () => (HOSTS.every((host) => forge.latest(next, `edge-reconciler/${host}`)?.state === 'success') ? true : undefined), 120_000);
  });

  it('a host waits while wave 1 is gone, and `reconcile --now --ignore-waves` applies at once', async () => {
    await agent('w1').running.stop();
    const next = await release(5, true);
    await trigger('w2');
    const waiting = await attempted('w2', next, 'waiting');
    assert.deepEqual(waiting.wave?.waitingFor?.hosts, ['w1']);
    const shown = await runCli(['status', '--state-dir', dirname(agent('w2').config)]);
    assert.match(shown.stdout, /last attempt: .* waiting .*\[WAVE_WAITING\] waiting for wave 1: w1/);
    const plain = await runCli(['reconcile', '--config', agent('w2').config, '--ignore-waves']);
    assert.equal(plain.exitCode, 1);
    assert.match(plain.stderr, /--ignore-waves goes with --now/);
    const asked = await runCli(['reconcile', '--config', agent('w2').config, '--now', '--ignore-waves']);
    assert.equal(asked.exitCode, 0, asked.stderr);
    assert.match(asked.stdout, /202 .*"ignoreWaves":true/);
    await live('w2', next);
    assert.equal(await conf('w2'), '# release 5\n');
    assert.notEqual((await status('w3')).lastApplied?.revision, next);
    assert.ok(agent('w2').logs.some((line) => line.includes('without waiting for the earlier waves (--ignore-waves)')));
  });

  it('every request the agents made is a valid call of the GitHub API, with the token', () => {
    assert.ok(forge.requests.length > 10);
    const invalid = forge.requests.filter((request) => request.problems.length > 0 || !request.authorized);
    assert.deepEqual(invalid.map((request) => `${request.method} ${request.path}: ${request.problems.join('; ')}`), []);
    const flavors = new Set(forge.requests.map((request) => `${request.flavor} ${request.operation}`));
    assert.deepEqual([...flavors].sort(), ['gitea repos/create-commit-status', 'gitea repos/get-combined-status-for-ref', 'github repos/create-commit-status', 'github repos/get-combined-status-for-ref']);
    const operations = new Set(forge.requests.map((request) => request.operation));
    assert.deepEqual([...operations].sort(), ['repos/create-commit-status', 'repos/get-combined-status-for-ref']);
    for (const each of agents.values()) assert.ok(!each.logs.join('\n').includes(TOKEN), `${each.host} logged the forge token`);
  });
});
