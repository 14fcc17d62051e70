/**
 * The fleet page and `status --fleet` with three real agents on loopback (their own sandbox roots, state dirs and
 * addresses, one port) and a fourth host of the inventory that never starts: every agent's `GET /` shows the four
 * hosts with their state (suspended, drifted, refusing a commit, unreachable), the terminal table says the same,
 * and no secret value reaches either, even one an operator pasted into a suspension reason.
 */
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { EXAMPLE_SECRETS, runCli } from '../helpers/cli.js';
import { createLoopbackFleet, FLEET_WEBHOOK_SECRET, startFleetScenario, type FleetAgent, type LoopbackFleet } from '../helpers/fleet-agents.js';
import { CLI } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

interface ViewRow {
  host: string;
  health: string;
  reachable: boolean;
  self: boolean;
  live?: { revision: string; subject?: string };
  lastRun?: { result: string; code?: string };
  drift: string[];
  suspended?: { reason: string };
  wave: { label: string };
}

/** Each host's row of the page: its health class and its cells' text, tags stripped. */
function pageRows(page: string): Map<string, { health: string; text: string }> {
  const rows = new Map<string, { health: string; text: string }>();
  for (const match of page.matchAll(/<tr class="h-([a-z]+)" id="host-([a-z0-9-]+)">([\s\S]*?)<\/tr>/g)) {
    rows.set(match[2] as string, { health: match[1] as string, text: (match[3] as string).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ') });
  }
  return rows;
}

function assertNoSecret(text: string, what: string): void {
  for (const [name, value] of Object.entries({ ...EXAMPLE_SECRETS, WEBHOOK: FLEET_WEBHOOK_SECRET })) {
    assert.ok(!text.includes(value), `${what}: the value of ${name} leaked`);
  }
}

describe('fleet page: three agents on loopback', function () {
  this.timeout(180_000);
  let fleet: LoopbackFleet;
  let first: string;
  let second: string;
  const agent = (host: string) => fleet.agents.get(host) as FleetAgent;

  before(async () => {
    fleet = await createLoopbackFleet();
    ({ first, second } = await startFleetScenario(fleet));
    await appendFile(join(agent('lod-prod').root, 'etc/logrotate.d/edge-apps'), '# edited by hand\n');
    await fetch(`${agent('lod-prod').url}/reconcile`, { method: 'POST' });
    await until('lod-prod to report drift', async () => ((await fleet.status('lod-prod')).lastAttempted?.result === 'drifted' ? true : undefined));
  });
  after(async () => {
    await fleet?.stop();
  });

  it('every agent serves a page with the four hosts and their state', async () => {
    for (const host of ['lod-standby', 'lod-prod', 'caddy-router']) {
      const page = await (await fetch(`${agent(host).url}/`)).text();
      const rows = pageRows(page);
      assert.deepEqual([...rows.keys()], ['lod-standby', 'model-gateway', 'lod-prod', 'caddy-router'], `${host}'s page lists the hosts in wave order`);
      assert.equal(rows.get('lod-standby')?.health, 'held');
      assert.match(rows.get('lod-standby')?.text ?? '', /suspended .* by ops: disk swap &lt;b&gt;tonight&lt;\/b&gt;/);
      assert.match(rows.get('lod-standby')?.text ?? '', new RegExp(`${first.slice(0, 7)} example desired state on loopback addresses`));
      assert.equal(rows.get('lod-prod')?.health, 'ok');
      // The subject comes from the serving host's copy of the repo: the suspended standby never fetched the second commit.
      const subject = host === 'lod-standby' ? '' : ' lod-prod: 6 workers; router: drop acmeEmail';
      assert.match(rows.get('lod-prod')?.text ?? '', new RegExp(`${second.slice(0, 7)}${subject} generation 2`));
      assert.match(rows.get('lod-prod')?.text ?? '', /1 file: \/etc\/logrotate\.d\/edge-apps/);
      assert.equal(rows.get('caddy-router')?.health, 'failing');
      assert.match(rows.get('caddy-router')?.text ?? '', new RegExp(`${first.slice(0, 7)} example desired state`));
      assert.match(rows.get('caddy-router')?.text ?? '', /invalid .* TEMPLATE_UNKNOWN_VARIABLE: .*unknown variable &quot;acmeEmail&quot;/);
      assert.match(rows.get('caddy-router')?.text ?? '', /wave 3/);
      assert.equal(rows.get('model-gateway')?.health, 'unreachable');
      assert.match(rows.get('model-gateway')?.text ?? '', /unreachable connection refused/);
      assert.match(rows.get(host)?.text ?? '', /\(this host\)/);
      assertNoSecret(page, `${host}'s page`);
    }
  });

  it('serves the page as HTML without scripts, for GET and HEAD only', async () => {
    const url = `${agent('lod-prod').url}/`;
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.match(await response.text(), /<meta http-equiv="refresh" content="30">/);
    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(url, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('status --fleet prints the same hosts and states, and exits 1 while one fails', async () => {
    const table = await runCli(['status', '--fleet', '--config', agent('caddy-router').config]);
    assert.equal(table.exitCode, 1, table.stderr);
    const lines = table.stdout.split('\n');
    assert.match(lines[0] as string, /^HOST\s+HEALTH\s+LIVE\s+LAST RUN\s+DRIFT\s+HOLD\s+WAVE$/);
    const line = (host: string) => lines.find((entry) => entry.startsWith(`${host} `) || entry.startsWith(`${host}* `)) ?? '';
    assert.match(line('lod-standby'), new RegExp(`^lod-standby\\s+held\\s+${first.slice(0, 7)} .*applied .*suspended\\s+1$`));
    assert.match(line('model-gateway'), /^model-gateway\s+unreachable\s+\?/);
    assert.match(line('lod-prod'), new RegExp(`^lod-prod\\s+ok\\s+${second.slice(0, 7)} lod-prod: 6 workers.*drifted .*1 file\\s+-\\s+2$`));
    assert.match(line('caddy-router*'), new RegExp(`^caddy-router\\*\\s+failing\\s+${first.slice(0, 7)} .*invalid .*-\\s+-\\s+3$`));
    assert.ok(lines.includes('    unreachable at 127.0.0.5: connection refused'), table.stdout);
    assert.ok(lines.some((entry) => /^ {4}TEMPLATE_UNKNOWN_VARIABLE: render failed: .*acmeEmail/.test(entry)), table.stdout);

    const json = await runCli(['status', '--fleet', '--json', '--config', agent('lod-prod').config]);
    const view = JSON.parse(json.stdout) as { servedBy: string; inventoryRevision: string; rows: ViewRow[] };
    assert.equal(view.servedBy, 'lod-prod');
    assert.equal(view.inventoryRevision, second);
    assert.deepEqual(
      view.rows.map((row) => [row.host, row.health, row.reachable, row.self, row.wave.label]),
      [
        ['lod-standby', 'held', true, false, 'wave 1'],
        ['model-gateway', 'unreachable', false, false, 'wave 1'],
        ['lod-prod', 'ok', true, true, 'wave 2'],
        ['caddy-router', 'failing', true, false, 'wave 3'],
      ],
    );
    assert.deepEqual(view.rows.find((row) => row.host === 'lod-prod')?.drift, ['/etc/logrotate.d/edge-apps']);
    assertNoSecret(table.stdout + table.stderr + json.stdout + json.stderr, 'status --fleet');
  });

  it('never shows a secret value, even one pasted into a suspension reason', async () => {
    const standby = agent('lod-standby');
    const pasted = `oops ${EXAMPLE_SECRETS.LOD_DB_PASSWORD} and ${FLEET_WEBHOOK_SECRET}`;
    const suspended = await execa(process.execPath, [CLI, 'suspend', '--config', standby.config, '--reason', pasted, '--by', 'ops'], { reject: false });
    assert.equal(suspended.exitCode, 0, suspended.stderr);
    try {
      for (const host of ['lod-standby', 'lod-prod', 'caddy-router']) {
        const page = await until(`${host}'s page to show the new reason`, async () => {
          const text = await (await fetch(`${agent(host).url}/`)).text();
          return text.includes('oops &lt;redacted&gt; and') ? text : undefined;
        });
        assertNoSecret(page, `${host}'s page`);
      }
      for (const args of [[], ['--json']]) {
        const result = await runCli(['status', '--fleet', ...args, '--config', agent('lod-prod').config]);
        assert.match(result.stdout, /oops <redacted> and/);
        assertNoSecret(result.stdout + result.stderr, `status --fleet ${args.join(' ')}`);
      }
    } finally {
      await execa(process.execPath, [CLI, 'suspend', '--config', standby.config, '--reason', 'disk swap <b>tonight</b>', '--by', 'ops']);
    }
  });
});
