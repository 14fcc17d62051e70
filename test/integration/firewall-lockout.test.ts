/**
 * The plan of a real revision (the example repo, whose SSH goes over tailscale0 only) is refused against a live
 * host that would be locked out, and passes where the host is reachable or the repo lifts the guard.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeError } from '../../reconciler/errors.js';
import { Host } from '../../reconciler/host/host.js';
import type { NetworkFacts, SshSession } from '../../reconciler/host/network-facts.js';
import { DEFAULT_PATH_POLICY } from '../../reconciler/host/path-policy.js';
import { PLAN_PIPELINE, runStages } from '../../reconciler/pipeline.js';
import { silentLogger, type RunState } from '../../reconciler/run-context.js';
import { placeholderSecrets } from '../../renderers/template.js';
import { copyExampleRepo } from '../helpers/cli.js';
import { EXAMPLE_REPO } from '../helpers/paths.js';

const ROOT_IDS = { uid: (name: string) => (name === 'root' ? 0 : undefined), gid: (name: string) => (name === 'root' ? 0 : undefined) };

function network(interfaces: string[], sessions: SshSession[]): NetworkFacts {
  return { interfaces: () => Promise.resolve(interfaces), sshSessions: () => Promise.resolve(sessions) };
}

async function plan(repo: string, root: string, facts: NetworkFacts): Promise<RunState> {
  const state: RunState = { tree: repo, previous: [], commands: [], durations: {} };
  const ctx = {
    hostName: 'lod-prod',
    host: new Host(root, ROOT_IDS, facts),
    secrets: placeholderSecrets,
    redact: (text: string) => text,
    policy: DEFAULT_PATH_POLICY,
    log: silentLogger,
  };
  return runStages(PLAN_PIPELINE, ctx, state);
}

describe('firewall lockout guard against the live host', function () {
  this.timeout(60_000);
  const cleanup: string[] = [];
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-lockout-root-'));
    cleanup.push(root);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('refuses the first apply on a host without tailscale0 whose operator is connected over eth0', async () => {
    const facts = network(['lo', 'eth0'], [{ local: '192.0.2.10', peer: '198.51.100.4', interface: 'eth0' }]);
    await assert.rejects(plan(EXAMPLE_REPO, root, facts), (error: unknown) => {
      assert.ok(error instanceof EdgeError, String(error));
      assert.equal(error.stage, 'plan');
      assert.equal(error.retry, 'invalid');
      assert.deepEqual(error.problems.map((p) => `${p.code} ${p.file}`).sort(), [
        'UFW_LOCKOUT_SSH roles/firewall/role.yaml',
        'UFW_MANAGEMENT_MISSING roles/firewall/role.yaml',
      ]);
      return true;
    });
  });

  it('plans on a host that has tailscale0 and whose operator is connected over it', async () => {
    const facts = network(['lo', 'eth0', 'tailscale0'], [{ local: '100.64.0.21', peer: '100.101.2.3', interface: 'tailscale0' }]);
    const state = await plan(EXAMPLE_REPO, root, facts);
    assert.equal(state.plan?.activation.firewall, true);
  });

  it('plans when edge.yaml lifts the guard with guards.allowHostLockout', async () => {
    const repo = await copyExampleRepo();
    cleanup.push(repo);
    const edge = join(repo, 'edge.yaml');
    const text = await readFile(edge, 'utf8');
    assert.match(text, /^guards:\n/m);
    await writeFile(edge, text.replace(/^guards:\n/m, 'guards:\n  allowHostLockout: true\n'));
    const state = await plan(repo, root, network(['lo', 'eth0'], [{ local: '192.0.2.10', peer: '198.51.100.4', interface: 'eth0' }]));
    assert.equal(state.plan?.activation.firewall, true);
  });
});
