/**
 * Waves and the forge, the parts without a network: the wave decision, how a peer's /status is judged, the wave
 * gate's timeout, what an outcome says on the forge, the host config's forge and waves sections, the status
 * document's wave, and `--ignore-waves` only with `--now`.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeError, formatProblem } from '../../reconciler/errors.js';
import { parseHostConfig } from '../../reconciler/config/host-config.js';
import { forgeTarget } from '../../reconciler/config/forge-config.js';
import { decideWave, describeDecision, type HostReport } from '../../reconciler/fleet/waves.js';
import { judgePeer } from '../../reconciler/fleet/peer-source.js';
import { AgentWaveGate } from '../../reconciler/fleet/wave-gate.js';
import { statusOfOutcome } from '../../reconciler/fleet/outcome-status.js';
import { silentLogger } from '../../reconciler/run-context.js';
import type { DesiredState } from '../../reconciler/model.js';
import { StateStore } from '../../reconciler/state/state-store.js';
import { readStatus, recordRun } from '../../reconciler/state/status.js';
import { TriggerBatch } from '../../reconciler/triggers/trigger-batch.js';
import { StatusOutbox } from '../../reconciler/fleet/status-outbox.js';
import { until } from '../helpers/wait.js';
import { peerStatusUrls } from '../../reconciler/fleet/fleet-config.js';

const WAVES = [['a1', 'a2'], ['b1'], ['c1']];
const SHA = '1'.repeat(40);
const reports = (entries: Record<string, HostReport['state']>) => new Map(Object.entries(entries).map(([host, state]) => [host, { state, detail: state }]));

describe('waves', () => {
  it('lets the first wave and hosts in no wave go at once', () => {
    assert.deepEqual(decideWave(WAVES, 'a2', new Map()), { kind: 'go', index: 1 });
    assert.deepEqual(decideWave(WAVES, 'elsewhere', new Map()), { kind: 'go', index: 0 });
  });

  it('waits for the first earlier wave that has not run the commit, naming its hosts', () => {
    const decision = decideWave(WAVES, 'c1', reports({ a1: 'success', a2: 'pending', b1: 'pending' }));
    assert.deepEqual(decision, { kind: 'waiting', index: 3, wave: 1, hosts: ['a2'] });
    assert.equal(describeDecision(decision), 'waiting for wave 1: a2');
    assert.deepEqual(decideWave(WAVES, 'c1', reports({ a1: 'success', a2: 'success' })), { kind: 'waiting', index: 3, wave: 2, hosts: ['b1'] });
    assert.deepEqual(decideWave(WAVES, 'c1', reports({ a1: 'success', a2: 'success', b1: 'success' })), { kind: 'go', index: 3 });
  });

  it('halts on a failure in any earlier wave, even while another wave is still pending', () => {
    const decision = decideWave(WAVES, 'c1', reports({ a1: 'pending', a2: 'success', b1: 'failure' }));
    assert.deepEqual(decision, { kind: 'halted', index: 3, wave: 2, host: 'b1', reason: 'failure' });
  });

  it('judges a peer by what it runs and what its runs did with the commit', async () => {
    const never = async () => false;
    const descendant = async (ancestor: string, revision: string) => ancestor === SHA && revision === 'f'.repeat(40);
    assert.equal((await judgePeer({ lastApplied: { revision: SHA }, history: [] }, SHA, never)).state, 'success');
    assert.equal((await judgePeer({ lastApplied: { revision: 'f'.repeat(40) }, history: [] }, SHA, descendant)).state, 'success');
    assert.deepEqual(await judgePeer({ lastApplied: { revision: '0'.repeat(40) }, history: [{ revision: SHA, result: 'rolled-back', code: 'HEALTH_FAILED' }] }, SHA, never), {
      state: 'failure',
      detail: 'rolled-back HEALTH_FAILED',
    });
    assert.equal((await judgePeer({ history: [{ revision: SHA, result: 'outside-window' }] }, SHA, never)).state, 'pending');
    assert.equal((await judgePeer({ history: [] }, SHA, never)).state, 'pending');
  });

  it('halts a host that waited past the wave timeout, and lets it go once the wave runs the commit', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    let answer: Record<string, HostReport['state']> = { a1: 'pending', a2: 'success', b1: 'success' };
    const gate = new AgentWaveGate({
      host: 'c1',
      log: silentLogger,
      forge: async () => reports(answer),
      peerStatusUrl: () => undefined,
      isDescendant: async () => false,
      timeoutSeconds: 60,
      now: () => now,
    });
    const desired = { edge: { waves: WAVES }, hosts: new Map() } as unknown as DesiredState;
    const first = await gate.check(SHA, desired);
    assert.equal(first.hold?.code, 'WAVE_WAITING');
    assert.deepEqual(first.wave, { index: 3, waitingFor: { wave: 1, hosts: ['a1'], since: '2026-01-01T00:00:00.000Z' } });
    now = new Date('2026-01-01T00:00:59Z');
    assert.equal((await gate.check(SHA, desired)).hold?.code, 'WAVE_WAITING');
    now = new Date('2026-01-01T00:01:00Z');
    const late = await gate.check(SHA, desired);
    assert.equal(late.hold?.code, 'WAVE_TIMEOUT');
    assert.equal(late.hold?.result, 'halted');
    assert.equal(late.wave.halted?.host, 'a1');
    answer = { a1: 'success', a2: 'success', b1: 'success' };
    assert.deepEqual(await gate.check(SHA, desired), { wave: { index: 3 } });
  });

  it('falls back to the peers when the forge cannot be read', async () => {
    const gate = new AgentWaveGate({
      host: 'b1',
      log: silentLogger,
      forge: async () => {
        throw new Error('connect ECONNREFUSED');
      },
      peerStatusUrl: (host, address) => `http://${address}:9/${host}/status`,
      isDescendant: async () => false,
      timeoutSeconds: 0,
    });
    const desired = { edge: { waves: WAVES }, hosts: new Map([['a1', { address: '127.0.0.1' }], ['a2', { address: '127.0.0.1' }]]) } as unknown as DesiredState;
    const verdict = await gate.check(SHA, desired);
    assert.equal(verdict.hold?.code, 'WAVE_WAITING');
    assert.match(verdict.hold?.reason ?? '', /a1 unreachable/);
  });

  it('says on the forge what a run did, in one state per outcome', () => {
    const same = (text: string) => text;
    assert.deepEqual(statusOfOutcome({ result: 'applied', revision: SHA, generation: 3 }, same), { sha: SHA, state: 'success', description: 'live and healthy (generation 3)' });
    assert.equal(statusOfOutcome({ result: 'invalid', revision: SHA, code: 'SCHEMA', reason: 'hosts/x.yaml:3: bad' }, same)?.state, 'failure');
    assert.equal(statusOfOutcome({ result: 'failed', revision: SHA, code: 'INTERNAL', reason: 'boom' }, same)?.state, 'error');
    assert.deepEqual(statusOfOutcome({ result: 'waiting', revision: SHA, reason: 'waiting for wave 1: a1' }, same), { sha: SHA, state: 'pending', description: 'waiting for wave 1: a1' });
    assert.equal(statusOfOutcome({ result: 'drifted', revision: SHA }, same), undefined);
    assert.equal(statusOfOutcome({ result: 'applied', revision: 'tree:abc' }, same), undefined);
  });

  it('takes --ignore-waves only from a forced (manual, now) trigger', () => {
    const batch = new TriggerBatch();
    batch.add('poll 1', { automatic: true, ignoreWaves: true });
    assert.equal(batch.ignoreWaves, false);
    batch.add('manual (now, ignoring waves)', { force: true, ignoreWaves: true });
    assert.equal(batch.ignoreWaves, true);
  });

  it('keeps the wave in the status document, and a run that applies clears the wait', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-wave-status-'));
    try {
      const store = new StateStore(dir);
      await store.init();
      const run = (result: 'waiting' | 'applied' | 'failed') => ({ at: new Date().toISOString(), result, durationMs: 1, durations: {} });
      await recordRun(store, 'b1', run('waiting'), undefined, { index: 2, waitingFor: { wave: 1, hosts: ['a1'], since: '2026-01-01T00:00:00.000Z' } });
      await recordRun(store, 'b1', run('failed'));
      assert.deepEqual((await readStatus(store, 'b1')).wave?.waitingFor?.hosts, ['a1']);
      await recordRun(store, 'b1', run('applied'));
      assert.deepEqual((await readStatus(store, 'b1')).wave, { index: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('host config: forge and waves', () => {
  const FILE = '/etc/edge-reconciler/config.yaml';
  const BASE = 'repo: git@github.com:acme/desired-state.git\nhost: lod-prod\n';
  const problemsOf = async (text: string): Promise<string[]> => {
    try {
      await parseHostConfig(FILE, text);
    } catch (error) {
      assert.ok(error instanceof EdgeError);
      return error.problems.map(formatProblem);
    }
    assert.fail('the config loaded');
  };

  it('needs a kind, a token file, and for gitea its URL; deployments are github only', async () => {
    assert.match((await problemsOf(`${BASE}forge:\n  owner: acme\n`)).join('\n'), /"forge" needs "kind"/);
    assert.match((await problemsOf(`${BASE}forge:\n  kind: github\n`)).join('\n'), /"forge.kind" github needs "forge.tokenFile"/);
    const gitea = (await problemsOf(`${BASE}forge:\n  kind: gitea\n  tokenFile: /nonexistent/token\n  deployments: true\n`)).join('\n');
    assert.match(gitea, /gitea needs "forge.baseUrl"/);
    assert.match(gitea, /"forge.deployments" is for github/);
    assert.match(gitea, /"forge.tokenFile" \/nonexistent\/token does not exist/);
    assert.match((await problemsOf(`repo: /srv/git/desired.git\nhost: lod-prod\nforge:\n  kind: github\n  tokenFile: /nonexistent/token\n`)).join('\n'), /set "forge.owner" and "forge.repo"/);
  });

  it('reads the token from a private file, never into JSON, and derives owner and repo', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-forge-config-'));
    try {
      const token = join(dir, 'token');
      const value = 'ghp_ForgeTokenValueThatMustNotLeak00';
      await writeFile(token, `${value}\n`, { mode: 0o644 });
      const text = `${BASE}forge:\n  kind: gitea\n  baseUrl: https://gitea.example.com\n  tokenFile: ${token}\n`;
      assert.match((await problemsOf(text)).join('\n'), /has mode 0644: make it 0600/);
      await chmod(token, 0o600);
      const config = await parseHostConfig(FILE, text);
      assert.equal(config.forge.token, value);
      assert.ok(!JSON.stringify(config).includes(value));
      assert.deepEqual(forgeTarget(config), { kind: 'gitea', apiUrl: 'https://gitea.example.com/api/v1', owner: 'acme', repo: 'desired-state' });
      assert.equal(peerStatusUrls(config)('lod-standby', '100.64.0.22'), 'http://100.64.0.22:9321/status');
      const peers = await parseHostConfig(FILE, `${text}waves:\n  peerPort: 9400\n  peerScheme: https\n  peers:\n    caddy-router: http://127.0.0.1:9999\n`);
      assert.equal(peerStatusUrls(peers)('lod-standby', 'fd7a::1'), 'https://[fd7a::1]:9400/status');
      assert.equal(peerStatusUrls(peers)('caddy-router', '100.64.0.10'), 'http://127.0.0.1:9999/status');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the forge outbox', () => {
  const item = (sha: string, state: string) => ({ sha, fingerprint: state });

  it('sends each commit\'s newest message once, in order of arrival', async () => {
    const sent: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const outbox = new StatusOutbox<{ sha: string; fingerprint: string }>({
      send: async (message) => {
        await gate;
        sent.push(`${message.sha} ${message.fingerprint}`);
      },
      log: silentLogger,
    });
    outbox.push(item('a', 'pending'));
    outbox.push(item('b', 'pending'));
    outbox.push(item('b', 'success'));
    outbox.push(item('c', 'success'));
    release();
    await until('the outbox empty', async () => (outbox.size === 0 ? true : undefined));
    // `a` was on its way while the others came; `b pending` was replaced by `b success` before it was sent.
    assert.deepEqual(sent, ['a pending', 'b success', 'c success']);
    outbox.push(item('c', 'success'));
    assert.equal(outbox.size, 0, 'a delivered message is not queued again');
    await outbox.close();
  });

  it('past its cap, drops the oldest unsent commit, never the one on its way', async () => {
    const sent: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const outbox = new StatusOutbox<{ sha: string; fingerprint: string }>({
      send: async (message) => {
        await gate;
        sent.push(message.sha);
      },
      log: silentLogger,
      maxPending: 2,
    });
    for (const sha of ['a', 'b', 'c']) outbox.push(item(sha, 'success'));
    release();
    await until('the outbox empty', async () => (outbox.size === 0 ? true : undefined));
    assert.deepEqual(sent, ['a', 'c']);
    await outbox.close();
  });
});
