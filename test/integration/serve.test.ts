/**
 * `edge-reconciler serve` as a real process against a real git server on loopback (sandbox root, activation
 * recorded): a push plus a signed webhook brings the commit live, also while a captured webhook for an older
 * commit is replayed; forged webhooks and force pushes change nothing; a hand edit of a managed file is healed; a rotated secret restarts exactly the unit that reads it;
 * and with the webhook off, polling brings a push live.
 */
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { exampleAppsConfig } from '../helpers/app-repos.js';
import { EXAMPLE_SECRETS, writeSecretsDir } from '../helpers/cli.js';
import { createUpstream, startGitHttpServer, type GitHttpServer, type Upstream } from '../helpers/git-server.js';
import { CLI, EXAMPLE_REPO } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

interface LogLine {
  msg: string;
  url?: string;
  result?: string;
  revision?: string;
  commands?: string[];
  reasons?: string[];
}

interface Agent {
  url: string;
  logs: LogLine[];
  process: ResultPromise;
  root: string;
}

const WEBHOOK_SECRET = 'whs-3c5f0a-test-webhook-secret';

describe('serve: the agent as a process', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  const agents: Agent[] = [];
  let base: string;
  let upstream: Upstream;
  let server: GitHttpServer;
  let secretsDir: string;

  const startAgent = async (extra: Record<string, unknown>): Promise<Agent> => {
    const root = await mkdtemp(join(base, 'root-'));
    const stateDir = await mkdtemp(join(base, 'state-'));
    const webhookFile = join(stateDir, 'webhook-secret');
    await writeFile(webhookFile, `${WEBHOOK_SECRET}\n`, { mode: 0o600 });
    const config = join(stateDir, 'config.yaml');
    await writeFile(
      config,
      stringify({
        repo: server.url('desired.git'),
        ref: 'release',
        host: 'lod-prod',
        root,
        stateDir,
        secretsDir,
        listen: '127.0.0.1:0',
        webhook: { enabled: true, secretFile: webhookFile },
        poll: { enabled: false },
        drift: { policy: 'heal', watch: true },
        // A lone agent: the hosts of the example's earlier waves do not exist here.
        waves: { enabled: false },
        apps: await exampleAppsConfig(),
        ...extra,
      }),
      { mode: 0o600 },
    );
    const child = execa(process.execPath, [CLI, 'serve', '--config', config, '--dry-activate'], { reject: false, buffer: false });
    const logs: LogLine[] = [];
    const raw: string[] = [];
    let pending = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
        else if (line.trim()) raw.push(line);
      }
    });
    const url = await until('the agent to listen', async () => {
      if (raw.length > 0) throw new Error(`serve failed: ${raw.join('\n')}`);
      return logs.find((line) => line.url)?.url;
    });
    const agent = { url, logs, process: child, root };
    agents.push(agent);
    return agent;
  };
  const status = async (agent: Agent) => (await (await fetch(`${agent.url}/status`)).json()) as {
    lastApplied?: { revision: string; generation: number };
    lastAttempted?: { result: string; code?: string; revision?: string };
    history: unknown[];
  };
  const appliedRevision = (agent: Agent, revision: string) =>
    until(`revision ${revision.slice(0, 8)} live`, async () => ((await status(agent)).lastApplied?.revision === revision ? true : undefined));
  const webhook = (agent: Agent, body: object, secret = WEBHOOK_SECRET, delivery: string = randomUUID()) => {
    const payload = JSON.stringify(body);
    const signature = `sha256=${createHmac('sha256', secret).update(payload).digest('hex')}`;
    return fetch(`${agent.url}/webhook/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': signature },
      body: payload,
    });
  };
  const editExample = async (file: string, change: (text: string) => string) => {
    const path = join(upstream.work, file);
    await writeFile(path, change(await readFile(path, 'utf8')));
    const revision = await upstream.commit(`edit ${file}`, {});
    await upstream.push('release');
    return revision;
  };

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-serve-'));
    secretsDir = await writeSecretsDir();
    cleanup.push(base, secretsDir);
    upstream = await createUpstream(base);
    await cp(EXAMPLE_REPO, upstream.work, { recursive: true });
    await upstream.commit('example desired state', {});
    await upstream.push('release');
    server = await startGitHttpServer(base);
  });

  after(async () => {
    for (const agent of agents) agent.process.kill('SIGTERM');
    await Promise.all(agents.map((agent) => agent.process));
    await server?.close();
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('applies at start, then brings a pushed commit live after one signed webhook', async () => {
    const agent = await startAgent({});
    await appliedRevision(agent, await upstream.git(['rev-parse', 'HEAD']));
    const next = await editExample('hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 9'));
    const sent = Date.now();
    const response = await webhook(agent, { ref: 'refs/heads/release', after: next });
    assert.equal(response.status, 202);
    await appliedRevision(agent, next);
    console.log(`      webhook to live (sandbox, activation recorded): ${Date.now() - sent} ms`);
    assert.match(await readFile(join(agent.root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), /^LOD_WORKERS=9$/m);
    assert.ok(!agent.logs.some((line) => JSON.stringify(line).includes(WEBHOOK_SECRET)), 'the webhook secret leaked into the logs');
    assert.ok(!agent.logs.some((line) => JSON.stringify(line).includes(EXAMPLE_SECRETS.LOD_DB_PASSWORD as string)), 'a secret leaked into the logs');
  });

  it('deploys a new commit while a captured webhook for the old one is replayed every 0.3 s by five senders', async () => {
    const agent = agents[0] as Agent;
    const old = (await status(agent)).lastApplied?.revision as string;
    const captured = { ref: 'refs/heads/release', after: old };
    const capturedDelivery = randomUUID();
    let replaying = true;
    let replays = 0;
    // Five replayers, each every 0.3 s, staggered: one lands in every run. Replayed as captured and with forged
    // delivery ids (the id is not covered by the signature).
    const replay = Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        await sleep(i * 60);
        while (replaying) {
          await webhook(agent, captured, WEBHOOK_SECRET, replays % 2 === 0 ? capturedDelivery : randomUUID());
          replays += 1;
          await sleep(300);
        }
      }),
    );
    try {
      await sleep(600);
      const next = await editExample('hosts/lod-prod.yaml', (text) => text.replace(/workers: \d+/, 'workers: 7'));
      assert.equal((await webhook(agent, { ref: 'refs/heads/release', after: next })).status, 202);
      await appliedRevision(agent, next);
    } finally {
      replaying = false;
      await replay;
    }
    assert.ok(replays >= 10, `${replays} replays`);
    assert.match(await readFile(join(agent.root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), /^LOD_WORKERS=7$/m);
    assert.ok(!agent.logs.some((line) => /cancelling the running reconcile/.test(line.msg)), 'a replayed webhook cancelled a run');
  });

  it('serves Prometheus metrics without a secret in them', async () => {
    const agent = agents[0] as Agent;
    const text = await (await fetch(`${agent.url}/metrics`)).text();
    assert.match(text, /^edge_reconciler_reconciles_total\{result="applied"\} [1-9]/m);
    assert.match(text, /^edge_reconciler_applied_generation [1-9]/m);
    assert.match(text, /^edge_reconciler_stage_duration_seconds_count\{stage="validate"\} [1-9]/m);
    for (const value of [WEBHOOK_SECRET, ...Object.values(EXAMPLE_SECRETS)]) assert.ok(!text.includes(value));
  });

  it('ignores forged and unsigned webhooks', async () => {
    const agent = agents[0] as Agent;
    const before = (await status(agent)).history.length;
    assert.equal((await webhook(agent, { ref: 'refs/heads/release', after: 'f'.repeat(40) }, 'not-the-secret')).status, 401);
    const unsigned = await fetch(`${agent.url}/webhook/github`, { method: 'POST', headers: { 'x-github-event': 'push' }, body: '{}' });
    assert.equal(unsigned.status, 401);
    await sleep(1_500);
    assert.equal((await status(agent)).history.length, before);
  });

  it('heals a hand edit of a managed file and restarts the unit', async () => {
    const agent = agents[0] as Agent;
    const unit = join(agent.root, 'etc/systemd/system/lod.service');
    const original = await readFile(unit, 'utf8');
    await writeFile(unit, original.replace('RestartSec=2', 'RestartSec=30'));
    await until('the unit file healed', async () => ((await readFile(unit, 'utf8')) === original ? true : undefined));
    const healed = await until('the heal run', async () => agent.logs.find((line) => line.reasons?.some((reason) => reason.startsWith('drift ')) && line.result === 'applied'));
    assert.ok(healed.commands?.includes('systemctl restart lod.service'), JSON.stringify(healed.commands));
  });

  it('re-renders on a rotated secret and restarts exactly the unit that reads it', async () => {
    const agent = agents[0] as Agent;
    await writeFile(join(secretsDir, 'LOD_SESSION_SECRET'), 'sess-rotated-value-4711\n', { mode: 0o600 });
    const env = join(agent.root, 'etc/edge-reconciler/env/lod.env');
    await until('the env file re-rendered', async () => ((await readFile(env, 'utf8')).includes('sess-rotated-value-4711') ? true : undefined));
    const run = await until('the secrets run', async () => agent.logs.find((line) => line.reasons?.some((reason) => reason.startsWith('secrets ')) && line.result === 'applied'));
    assert.deepEqual(run.commands?.filter((command) => command.startsWith('systemctl') && !command.includes('deadman')), ['systemctl restart lod.service']);
    await writeFile(join(secretsDir, 'LOD_SESSION_SECRET'), `${EXAMPLE_SECRETS.LOD_SESSION_SECRET}\n`, { mode: 0o600 });
  });

  it('refuses a force push that rewrites history, changing nothing', async () => {
    const agent = agents[0] as Agent;
    const live = (await status(agent)).lastApplied?.revision as string;
    const files = await readFile(join(agent.root, 'etc/edge-reconciler/env/lod.env'), 'utf8');
    await upstream.git(['reset', '-q', '--hard', 'HEAD~1']);
    const rewritten = await upstream.commit('rewritten history', { 'README.md': 'rewritten\n' });
    await upstream.push('--force', 'release');
    await webhook(agent, { ref: 'refs/heads/release', after: rewritten });
    const attempt = await until('the refusal', async () => {
      const now = await status(agent);
      return now.lastAttempted?.revision === rewritten ? now.lastAttempted : undefined;
    });
    assert.equal(attempt.result, 'refused');
    assert.equal(attempt.code, 'NOT_DESCENDANT');
    assert.equal((await status(agent)).lastApplied?.revision, live);
    assert.equal(await readFile(join(agent.root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), files);
  });

  it('brings a push live by polling when the webhook is off', async () => {
    const agent = await startAgent({ webhook: { enabled: false }, poll: { enabled: true, intervalSeconds: 5, jitterSeconds: 0 }, trust: { requireSignatures: false, allowRewinds: true } });
    await appliedRevision(agent, await upstream.git(['rev-parse', 'HEAD']));
    const next = await editExample('hosts/lod-prod.yaml', (text) => text.replace(/workers: \d+/, 'workers: 3'));
    await appliedRevision(agent, next);
    assert.match(await readFile(join(agent.root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), /^LOD_WORKERS=3$/m);
  });
});
