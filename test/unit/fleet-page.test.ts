/**
 * The fleet page's model and rendering: rows from status documents (also hostile ones), waves and apps when a
 * host reports them, peers that do not answer, escaping, the page's landmarks, the terminal table, and the
 * gathering against a real git repo (inventory and commit subjects) with fake peers.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { fetchPeerStatus, gatherFleet, peerStatusUrl, sharedGatherer, type FleetSource } from '../../reconciler/fleet/fleet-gather.js';
import { peerStatusUrls } from '../../reconciler/fleet/fleet-config.js';
import type { HostConfig } from '../../reconciler/config/host-config.js';
import { rowFromStatus, unreachableRow, type FleetView } from '../../reconciler/fleet/fleet-model.js';
import { escapeHtml, renderFleetPage } from '../../reconciler/fleet/fleet-page.js';
import { renderFleetTable } from '../../reconciler/fleet/fleet-table.js';
import { createUpstream, startSilentServer } from '../helpers/git-server.js';

const NOW = '2026-11-30T12:00:00.000Z';
const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const WAVES = [['standby'], ['prod'], ['router']];

const applied = (extra: Record<string, unknown> = {}) => ({
  host: 'prod',
  updatedAt: NOW,
  lastApplied: { revision: SHA, generation: 4, at: '2026-11-30T11:58:00.000Z' },
  lastAttempted: { revision: SHA, at: '2026-11-30T11:59:00.000Z', result: 'unchanged', durationMs: 85, durations: {} },
  history: [],
  badRevisions: [],
  ...extra,
});

function view(rows: FleetView['rows']): FleetView {
  return { servedBy: 'prod', generatedAt: NOW, inventoryRevision: SHA, refreshSeconds: 30, rows };
}

describe('fleet page: rows from status documents', () => {
  it('a host on its commit is ok, with its live commit, last run and wave from edge.yaml', () => {
    const row = rowFromStatus({ name: 'prod', address: '100.64.0.21' }, applied(), { self: true, waves: WAVES });
    assert.equal(row.health, 'ok');
    assert.equal(row.live?.short, 'a1b2c3d');
    assert.equal(row.live?.generation, 4);
    assert.deepEqual(row.lastRun && { result: row.lastRun.result, durationMs: row.lastRun.durationMs }, { result: 'unchanged', durationMs: 85 });
    assert.equal(row.wave.label, 'wave 2');
    assert.equal(row.wave.waiting, false);
    assert.equal(row.apps, undefined);
  });

  it('a rolled-back run is failing and names the failed check; drift is listed', () => {
    const row = rowFromStatus(
      { name: 'prod', address: 'a' },
      applied({
        lastAttempted: {
          revision: 'f'.repeat(40),
          at: NOW,
          result: 'rolled-back',
          durationMs: 61_000,
          code: 'HEALTH_FAILED',
          reason: 'health failed [HEALTH_FAILED]',
          failedCheck: { name: 'lod-http', status: 'unhealthy', message: 'GET /healthz answered 503' },
          drift: ['/etc/caddy/Caddyfile'],
          durations: {},
        },
      }),
      { self: false, waves: WAVES },
    );
    assert.equal(row.health, 'failing');
    assert.equal(row.healthLabel, 'rolled back');
    assert.equal(row.lastRun?.check, 'lod-http: GET /healthz answered 503');
    assert.equal(row.lastRun?.reason, 'health failed', 'the code is not repeated at the end of the reason');
    assert.deepEqual(row.drift, ['/etc/caddy/Caddyfile']);
  });

  it('suspended and pinned hosts are held and say why', () => {
    const row = rowFromStatus(
      { name: 'prod', address: 'a' },
      applied({ suspended: { reason: 'disk swap', at: NOW, by: 'alice' }, pinned: { generation: 3, reason: 'rolled back by hand', pinnedAgainst: SHA } }),
      { self: false, waves: [] },
    );
    assert.equal(row.health, 'held');
    assert.deepEqual(row.suspended, { reason: 'disk swap', at: NOW, by: 'alice' });
    assert.deepEqual(row.pinned, { reason: 'rolled back by hand', generation: 3 });
    assert.equal(row.wave.label, 'no waves');
  });

  it('renders the /status wave when present: waiting, halted, and its index over edge.yaml', () => {
    const waiting = rowFromStatus(
      { name: 'prod', address: 'a' },
      applied({ wave: { index: 2, waitingFor: { wave: 1, hosts: ['standby', 'gateway'], since: NOW } } }),
      { self: false, waves: [] },
    );
    assert.equal(waiting.health, 'waiting');
    assert.equal(waiting.wave.label, 'wave 2');
    assert.equal(waiting.wave.detail, `waiting for wave 1: standby, gateway since ${NOW}`);
    const halted = rowFromStatus({ name: 'router', address: 'a' }, applied({ wave: { index: 3, halted: { wave: 1, host: 'standby', reason: 'health failed' } } }), { self: false, waves: WAVES });
    assert.equal(halted.health, 'held', 'the failure is the earlier host\'s; this one stays on its live commit');
    assert.equal(halted.healthLabel, 'halted by an earlier wave');
    assert.equal(halted.wave.detail, 'halted: wave 1 failed on standby: health failed');
    const none = rowFromStatus({ name: 'other', address: 'a' }, applied({ wave: { index: 0 } }), { self: false, waves: WAVES });
    assert.equal(none.wave.label, 'no wave');
  });

  it('lists apps when the status has them, a failed release makes the host failing', () => {
    const row = rowFromStatus(
      { name: 'prod', address: 'a' },
      applied({ apps: [{ app: 'lod', sha: 'c'.repeat(40), builtAt: NOW, buildSeconds: 3 }, { app: 'api', sha: 'd'.repeat(40), failed: { sha: 'e'.repeat(40), reason: 'npm ci failed' } }] }),
      { self: false, waves: [] },
    );
    assert.deepEqual(row.apps, [{ app: 'lod', sha: 'ccccccc' }, { app: 'api', sha: 'ddddddd', failed: 'failed eeeeeee: npm ci failed' }]);
    assert.equal(row.health, 'failing');
  });

  it('takes nothing it cannot type from a hostile document, and cuts long texts', () => {
    for (const document of [null, 42, 'x', [], { lastApplied: { revision: 'not-a-sha; rm -rf /' }, lastAttempted: { result: 7 }, history: 'no' }]) {
      const row = rowFromStatus({ name: 'prod', address: 'a' }, document, { self: false, waves: [] });
      assert.equal(row.health, 'unknown');
      assert.equal(row.live, undefined);
    }
    const long = rowFromStatus({ name: 'prod', address: 'a' }, applied({ suspended: { reason: `x\u0007${'y'.repeat(5000)}` } }), { self: false, waves: [] });
    assert.ok((long.suspended?.reason.length ?? 0) <= 240);
    assert.ok(!long.suspended?.reason.includes('\u0007'));
  });
});

describe('fleet page: rendering', () => {
  const hostile = rowFromStatus(
    { name: 'prod', address: '"><img src=x onerror=alert(1)>' },
    applied({ suspended: { reason: '<script>alert("x")</script> & more', by: "o'neil" }, lastAttempted: { at: NOW, result: 'invalid', code: 'X<Y', reason: '<b>bold</b>', durations: {} } }),
    { self: true, waves: WAVES },
  );

  it('escapes every text of the documents', () => {
    const page = renderFleetPage(view([hostile]));
    assert.ok(!/<script/i.test(page), 'no script element at all');
    assert.ok(!page.includes('<img'), page);
    assert.ok(!page.includes('<b>bold'), page);
    assert.ok(page.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more'));
    assert.ok(page.includes('o&#39;neil'));
    assert.equal(escapeHtml(`<&>"'`), '&lt;&amp;&gt;&quot;&#39;');
  });

  it('has the landmarks, a language, a title, table headers and a meta refresh', () => {
    const page = renderFleetPage(view([hostile, unreachableRow({ name: 'router', address: '100.64.0.10' }, 'connection refused', WAVES)]), '1.2.3');
    assert.match(page, /^<!doctype html>\n<html lang="en">/);
    assert.match(page, /<title>Fleet: 2 hosts \(2 need attention\) · edge-reconciler<\/title>/);
    assert.match(page, /<meta http-equiv="refresh" content="30">/);
    assert.match(page, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    for (const landmark of ['<header>', '<main>', '<footer>', '<caption>', '<th scope="col">Host</th>', '<th scope="row"']) assert.ok(page.includes(landmark), landmark);
    assert.match(page, /unreachable<\/span> connection refused/);
    assert.match(page, /edge-reconciler 1\.2\.3/);
  });

  it('the terminal table has one line per host and says why a peer is missing', () => {
    const ok = rowFromStatus({ name: 'prod', address: '100.64.0.21' }, applied(), { self: true, waves: WAVES });
    const table = renderFleetTable(view([ok, unreachableRow({ name: 'router', address: '100.64.0.10' }, 'no answer within 2 s', WAVES)]));
    const lines = table.split('\n');
    assert.match(lines[0] as string, /^HOST\s+HEALTH\s+LIVE\s+LAST RUN\s+DRIFT\s+HOLD\s+WAVE$/);
    assert.match(lines[1] as string, /^prod\*\s+ok\s+a1b2c3d\s+unchanged 60 s ago \(85 ms\)\s+-\s+-\s+2$/);
    assert.match(lines[2] as string, /^router\s+unreachable\s+\?/);
    assert.equal(lines[3], '    unreachable at 100.64.0.10: no answer within 2 s');
  });
});

describe('fleet page: gathering', function () {
  this.timeout(60_000);
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-fleet-unit-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('dials only host names and IPs, IPv6 in brackets', () => {
    assert.equal(peerStatusUrl('100.64.0.10', 9321), 'http://100.64.0.10:9321/status');
    assert.equal(peerStatusUrl('fd7a:115c::1', 9321), 'http://[fd7a:115c::1]:9321/status');
    assert.equal(peerStatusUrl('lod-prod.tail1234.ts.net', 9321), 'http://lod-prod.tail1234.ts.net:9321/status');
    for (const bad of ['', 'evil.com/x?', 'a b', 'user@host', 'host:80']) assert.equal(peerStatusUrl(bad, 9321), undefined, bad);
  });

  it('dials peers as the waves do (waves.peers, waves.peerScheme, waves.peerPort), else at the port of listen', () => {
    const plain = peerStatusUrls({ listen: '100.64.0.21:9400' } as HostConfig);
    assert.equal(plain('router', '100.64.0.10'), 'http://100.64.0.10:9400/status');
    const waves = { peerPort: 7000, peerScheme: 'https', peers: { gateway: 'http://10.0.0.9:1234' } };
    const configured = peerStatusUrls({ listen: '100.64.0.21:9400', waves } as unknown as HostConfig);
    assert.equal(configured('router', '100.64.0.10'), 'https://100.64.0.10:7000/status');
    assert.equal(configured('gateway', '100.64.0.30'), 'http://10.0.0.9:1234/status');
    assert.equal(configured('bad', 'evil.com/x?'), undefined);
  });

  it('lists the inventory of the live revision with subjects; peers that fail, lie or answer junk are shown as such', async () => {
    const upstream = await createUpstream(base, 'fleet.git');
    const host = (address: string) => `address: ${address}\nroles: [base]\n`;
    const first = await upstream.commit('first commit', {
      'edge.yaml': 'version: 1\nwaves:\n  - [standby]\n  - [prod]\n  - [router, gateway]\n',
      'hosts/prod.yaml': host('127.0.0.1'),
      'hosts/standby.yaml': host('127.0.0.2'),
      'hosts/router.yaml': host('127.0.0.3'),
      'hosts/gateway.yaml': host('127.0.0.4'),
      'hosts/bad.yaml': host('evil.com/x?'),
      'hosts/README.md': 'not a host',
    });
    const second = await upstream.commit('second: <b>bold</b> subject', { 'hosts/liar.yaml': host('127.0.0.6') });
    const asked: string[] = [];
    const source: FleetSource = {
      repo: upstream.work,
      stateDir: join(base, 'state'),
      host: 'prod',
      selfStatus: async () => ({ ...applied(), lastApplied: { revision: second, generation: 2, at: NOW } }),
      peerUrl: (_host, address) => peerStatusUrl(address, 9999),
      peerTimeoutMs: 500,
      refreshSeconds: 15,
      redact: (text) => text.split('s3cret-value').join('[redacted]'),
      fetchStatus: async (url) => {
        asked.push(url);
        if (url.includes('127.0.0.2')) return { ...applied(), host: 'standby', lastApplied: { revision: first, generation: 1, at: NOW }, suspended: { reason: 'leaked s3cret-value here' } };
        if (url.includes('127.0.0.3')) throw new Error('no answer within 0.5 s');
        if (url.includes('127.0.0.4')) return { hello: 'world' };
        return { ...applied(), host: 'router' };
      },
    };
    const fleet = await gatherFleet(source);
    assert.equal(fleet.inventoryRevision, second);
    assert.deepEqual(fleet.rows.map((row) => row.host), ['standby', 'prod', 'gateway', 'router', 'bad', 'liar']);
    const byHost = new Map(fleet.rows.map((row) => [row.host, row]));
    assert.equal(byHost.get('prod')?.self, true);
    assert.equal(byHost.get('prod')?.live?.subject, 'second: <b>bold</b> subject');
    assert.equal(byHost.get('standby')?.live?.subject, 'first commit');
    assert.equal(byHost.get('standby')?.suspended?.reason, 'leaked [redacted] here');
    assert.equal(byHost.get('router')?.healthLabel, 'unreachable: no answer within 0.5 s');
    assert.equal(byHost.get('gateway')?.problem, 'answered something that is not a status document');
    assert.equal(byHost.get('liar')?.problem, 'its address answers as router');
    assert.match(byHost.get('bad')?.problem ?? '', /is no host name or IP/);
    assert.deepEqual(asked.sort(), ['http://127.0.0.2:9999/status', 'http://127.0.0.3:9999/status', 'http://127.0.0.4:9999/status', 'http://127.0.0.6:9999/status']);
    assert.ok(!renderFleetPage(fleet).includes('s3cret-value'));
    assert.ok(!renderFleetTable(fleet).includes('s3cret-value'));
  });

  it('lists only this host, and says why, before anything was applied', async () => {
    const fleet = await gatherFleet({
      repo: '/nonexistent',
      stateDir: join(base, 'none'),
      host: 'prod',
      selfStatus: async () => ({ host: 'prod', updatedAt: NOW, history: [] }),
      peerUrl: () => undefined,
      peerTimeoutMs: 500,
      refreshSeconds: 30,
    });
    assert.deepEqual(fleet.rows.map((row) => [row.host, row.health]), [['prod', 'unknown']]);
    assert.equal(fleet.inventoryProblem, 'nothing applied or attempted here yet');
  });

  it('a damaged state dir shows as this host failing, not as a broken page', async () => {
    const fleet = await gatherFleet({
      repo: '/nonexistent',
      stateDir: join(base, 'none'),
      host: 'prod',
      selfStatus: async () => {
        throw new Error('status.json is damaged');
      },
      peerUrl: () => undefined,
      peerTimeoutMs: 500,
      refreshSeconds: 30,
    });
    assert.deepEqual(fleet.rows.map((row) => [row.host, row.self, row.health, row.problem]), [['prod', true, 'failing', 'its status cannot be read: status.json is damaged']]);
    assert.match(renderFleetPage(fleet), /status unreadable/);
    assert.match(renderFleetTable(fleet), /^ {4}its status cannot be read: status.json is damaged$/m);
  });

  it('a peer that never answers times out; one that refuses or floods is refused', async () => {
    const silent = await startSilentServer();
    const flood = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(`"${'x'.repeat(2 * 1024 * 1024)}"`);
    });
    await new Promise<void>((resolve) => flood.listen(0, '127.0.0.1', resolve));
    try {
      await assert.rejects(fetchPeerStatus(`http://127.0.0.1:${silent.port}/status`, 300), { message: 'no answer within 0.3 s' });
      await assert.rejects(fetchPeerStatus(`http://127.0.0.1:${(flood.address() as AddressInfo).port}/status`, 5_000), { message: 'answered more than 1 MiB' });
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      await assert.rejects(fetchPeerStatus(`http://127.0.0.1:${port}/status`, 2_000), { message: 'connection refused' });
    } finally {
      await silent.close();
      await new Promise((resolve) => flood.close(resolve));
    }
  });

  it('requests that arrive together share one gathering', async () => {
    let gathered = 0;
    const shared = sharedGatherer(async () => {
      gathered += 1;
      return view([]);
    }, 60_000);
    await Promise.all([shared(), shared(), shared()]);
    assert.equal(gathered, 1);
  });
});
