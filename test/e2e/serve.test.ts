/**
 * `edge-reconciler serve` as the systemd service a VM runs (the project's own unit, ExecStartPre recover), against
 * a real systemd: it applies the release branch at start; a push plus one signed webhook brings the new revision
 * live and healthy (the time from webhook to healthy is printed); its fleet page and `status --fleet` show it;
 * forged webhooks change nothing; with the webhook off, polling alone brings a push live; `systemctl stop` ends it
 * cleanly. The unit is the hardened one (`systemd-analyze security` at most 4.0). One container for the whole
 * file: the scenarios follow each other as on one host.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { head } from '../helpers/git-repo.js';
import { waitUntil } from '../helpers/wait.js';
import { AGENT, EdgeHost, KILLED, SERVICE, type ServiceStatus } from '../helpers/e2e-host.js';

const WORKERS = (count: number) => (text: string) => text.replace(/workers: \d+/, `workers: ${count}`);

describe('e2e serve: the agent as a systemd service', function () {
  this.timeout(240_000);
  let edge: EdgeHost;
  let webhookSecret: string;

  /** `edge-reconciler status` inside, through the installed command, as an operator runs it. */
  const statusText = async () => (await edge.box.exec([SERVICE.bin, 'status', '--state-dir', AGENT.stateDir])).stdout;
  const serviceEvidence = async () => `${await edge.evidence([SERVICE.unit, 'lod.service'])}\n${await edge.box.journal(SERVICE.unit, 40)}`;
  /** The agent's JSON log lines in the journal (what ExecStartPre and systemd print are left out). */
  const agentLog = async () =>
    (await edge.box.exec(['journalctl', '--no-pager', '-o', 'cat', '-u', SERVICE.unit])).stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; revision?: string; reasons?: string[] });
  const historyOf = (status: ServiceStatus | undefined) => JSON.stringify(status?.history);

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine builds the cached root first
    edge = await EdgeHost.boot();
  });
  after(async () => edge?.shutdown());

  it('starts after a power cut mid-apply, recovers, and applies the release branch: units active, the app healthy, status shows it live', async () => {
    const revision = await head(edge.workRepo);
    // A one-off apply killed after its third file op, as a power cut would: the half-written generation 1 is what
    // the service's ExecStartPre (recover) finds at the next boot.
    const crashed = await edge.apply('lod-prod', { env: { EDGE_CRASH_AT: 'apply:op:2' } });
    assert.equal(crashed.exitCode, KILLED, `the agent was not killed: ${crashed.stderr}`);
    webhookSecret = await edge.installService({ webhook: { enabled: true }, poll: { enabled: true, intervalSeconds: 3600, jitterSeconds: 0 } });
    const status = await edge.waitUntilLive(revision, 60_000).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await serviceEvidence()}`);
    });

    assert.equal(await edge.box.unitState(SERVICE.unit), 'active');
    assert.equal(await edge.enabledState(SERVICE.unit), 'enabled');
    assert.equal(await edge.unitProperty(SERVICE.unit, 'ExecMainPID'), String(await edge.box.mainPid(SERVICE.unit)));
    assert.match(await edge.box.journal(SERVICE.unit, 200), /recovered generation 1: undone/, 'ExecStartPre recovered');
    assert.equal(status.host, 'lod-prod');
    assert.equal(status.lastApplied?.generation, 2);
    assert.deepEqual(await edge.generationMismatches(2), []);
    assert.equal(status.lastAttempted?.result, 'applied');
    assert.ok(status.lastAttempted?.durations?.health !== undefined, `health ran: ${JSON.stringify(status.lastAttempted)}`);

    for (const unit of ['lod.service', 'lod-backup.timer']) assert.equal(await edge.box.unitState(unit), 'active', `${unit}\n${await serviceEvidence()}`);

    // The hardened unit, as systemd itself rates it on this host: the apply above ran under it.
    const { exposure, report } = await edge.securityExposure(SERVICE.unit);
    assert.ok(exposure <= 4.0, `systemd-analyze security rates the agent's unit ${exposure} (at most 4.0):\n${report}`);
    assert.deepEqual(await edge.box.httpGet('http://127.0.0.1:8080/healthz'), { status: 200, body: 'ok' });
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '4');
    assert.deepEqual(await edge.box.httpGet(`http://${SERVICE.listen}/healthz`), { status: 200, body: 'ok\n' });

    const text = await statusText();
    assert.match(text, new RegExp(`^live: +${revision.slice(0, 7)}\\w* \\(generation 2,`, 'm'), text);
    assert.match(text, /^last attempt: +.*applied/m, text);
  });

  it('brings a pushed commit live and healthy after one signed webhook', async () => {
    const lodPid = await edge.box.mainPid('lod.service');
    const next = await edge.commit('hosts/lod-prod.yaml', WORKERS(5), 'lod: 5 workers');

    const sent = performance.now();
    const response = await edge.sendWebhook(next, webhookSecret);
    assert.equal(response.status, 202, response.body);
    assert.deepEqual(JSON.parse(response.body), { accepted: `refs/heads/${AGENT.ref}`, after: next, decision: 'started' });
    const status = await edge.waitUntilLive(next, 60_000, 50).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await serviceEvidence()}`);
    });
    const elapsed = Math.round(performance.now() - sent);
    console.log(`      webhook to healthy: ${elapsed} ms (health stage ${status.lastAttempted?.durations?.health ?? '?'} ms)`);

    assert.equal(status.lastApplied?.generation, 3);
    assert.equal(status.lastAttempted?.result, 'applied');
    assert.ok(status.lastAttempted?.durations?.health !== undefined, 'the health checks ran');
    assert.equal(status.history.filter((run) => run.result === 'applied').length, 2, historyOf(status));
    const app = await edge.lodEnv();
    assert.equal(app.LOD_WORKERS, '5');
    const newPid = await edge.box.mainPid('lod.service');
    assert.ok(newPid > 0 && newPid !== lodPid, `lod.service was not restarted (MainPID ${lodPid} → ${newPid})`);
    assert.equal(app.pid, newPid);
    assert.equal(await edge.box.unitState('lod.service'), 'active');
    assert.match(await statusText(), new RegExp(`^live: +${next.slice(0, 7)}\\w* \\(generation 3,`, 'm'));
    const journal = await edge.box.journal(SERVICE.unit, 200);
    assert.ok(!journal.includes(webhookSecret), 'the webhook secret is in the journal');
  });

  it('serves the fleet page under the hardened unit: this host live with its commit subject, the peers it cannot reach said so', async () => {
    const page = await edge.box.httpGet(`http://${SERVICE.listen}/`, 15_000);
    assert.equal(page.status, 200, page.body);
    const row = /<tr class="h-([a-z]+)" id="host-lod-prod">([\s\S]*?)<\/tr>/.exec(page.body);
    assert.equal(row?.[1], 'ok', page.body);
    assert.match(row?.[2] ?? '', /lod: 5 workers/, 'the subject is read from the mirror in the state dir');
    // The container has its own network: the other hosts' mesh addresses lead nowhere.
    for (const peer of ['caddy-router', 'lod-standby', 'model-gateway']) assert.match(page.body, new RegExp(`<tr class="h-unreachable" id="host-${peer}">`));
    const table = await edge.box.exec([SERVICE.bin, 'status', '--fleet', '--config', SERVICE.config], { reject: false });
    assert.equal(table.exitCode, 1, `exit 1 while peers do not answer: ${table.stderr}`);
    assert.match(table.stdout, /^lod-prod\*\s+ok\s+[0-9a-f]{7} lod: 5 workers/m, table.stdout);
    assert.ok(!page.body.includes(webhookSecret) && !table.stdout.includes(webhookSecret), 'the webhook secret is on the page');
  });

  it('changes nothing on a forged or unsigned webhook, even with a new commit waiting', async () => {
    const before = await edge.serviceStatus();
    const lodPid = await edge.box.mainPid('lod.service');
    const agentPid = await edge.box.mainPid(SERVICE.unit);
    const waiting = await edge.commit('hosts/lod-prod.yaml', WORKERS(6), 'lod: 6 workers');

    const forged = await edge.sendWebhook(waiting, 'not-the-secret');
    assert.equal(forged.status, 401, forged.body);
    const unsigned = await edge.box.exec(
      ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', 'x-github-event: push', '--data-binary', '{"ref":"refs/heads/release"}', `http://${SERVICE.listen}/webhook/github`],
    );
    assert.equal(unsigned.stdout, '401');
    await sleep(3_000); // a run started by either would have fetched and begun applying by now

    const after = await edge.serviceStatus();
    assert.equal(historyOf(after), historyOf(before), 'no run was recorded');
    assert.equal(after?.lastApplied?.revision, before?.lastApplied?.revision);
    assert.equal(await edge.box.mainPid('lod.service'), lodPid, 'lod.service was restarted');
    assert.equal(await edge.box.mainPid(SERVICE.unit), agentPid, 'the agent was restarted');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '5');
    assert.match(await edge.box.readFile('/etc/edge-reconciler/env/lod.env'), /^LOD_WORKERS=5$/m);
  });

  it('brings a push live by polling alone once the webhook is switched off', async () => {
    await edge.writeServiceConfig({ webhook: { enabled: false }, poll: { enabled: true, intervalSeconds: 5, jitterSeconds: 0 } });
    const agentPid = await edge.box.mainPid(SERVICE.unit);
    await edge.box.exec(['systemctl', 'restart', SERVICE.unit], { timeoutMs: 120_000 });
    assert.notEqual(await edge.box.mainPid(SERVICE.unit), agentPid);
    // The commit the forged webhook announced is applied by the restart's startup run.
    await edge.waitUntilLive(await head(edge.workRepo), 60_000);
    assert.equal((await edge.box.httpGet(`http://${SERVICE.listen}/webhook/github`)).status, 404, 'the webhook is off');
    const restarted = await edge.serviceStatus();
    assert.deepEqual(restarted?.history.filter((run) => !run.revision).map((run) => run.result), ['recovered'], historyOf(restarted));

    const lodPid = await edge.box.mainPid('lod.service');
    const next = await edge.commit('hosts/lod-prod.yaml', WORKERS(7), 'lod: 7 workers');
    const pushed = performance.now();
    const status = await edge.waitUntilLive(next, 45_000).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await serviceEvidence()}`);
    });
    console.log(`      push to healthy by polling (every 5 s): ${Math.round(performance.now() - pushed)} ms`);

    assert.equal(status.lastAttempted?.result, 'applied');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '7');
    assert.notEqual(await edge.box.mainPid('lod.service'), lodPid);
    assert.equal(await edge.box.unitState('lod.service'), 'active');
    const run = (await agentLog()).find((line) => line.msg === 'reconcile applied' && line.revision === next);
    assert.match(run?.reasons?.join(' ') ?? '', /^poll \d+$/, `a poll alone started the run: ${JSON.stringify(run)}`);
  });

  it('stops cleanly on systemctl stop (SIGTERM): the reconcile in flight finishes, exit 0, the managed units left running', async () => {
    const next = await edge.commit('hosts/lod-prod.yaml', WORKERS(8), 'lod: 8 workers');
    const asked = await edge.box.exec([SERVICE.bin, 'reconcile']);
    assert.match(asked.stdout, /asked the agent at http:\/\/127\.0\.0\.1:9321\/reconcile: 202/, asked.stdout);
    await waitUntil(async () => (await edge.serviceStatus())?.daemon?.state === 'running', { timeoutMs: 10_000, intervalMs: 50, what: 'the reconcile to run' });

    const started = performance.now();
    await edge.box.exec(['systemctl', 'stop', SERVICE.unit], { timeoutMs: 120_000 });
    const stopMs = Math.round(performance.now() - started);
    console.log(`      stop with a reconcile in flight: ${stopMs} ms`);

    assert.equal(await edge.box.unitState(SERVICE.unit), 'inactive', await serviceEvidence());
    assert.equal(await edge.unitProperty(SERVICE.unit, 'Result'), 'success');
    assert.equal(await edge.unitProperty(SERVICE.unit, 'ExecMainCode'), '1', 'the main process exited (CLD_EXITED), not killed');
    assert.equal(await edge.unitProperty(SERVICE.unit, 'ExecMainStatus'), '0');
    assert.ok(stopMs < 60_000, `the stop waited no longer than the grace period: ${stopMs} ms`);
    const journal = (await edge.box.exec(['journalctl', '--no-pager', '-o', 'cat', '-u', SERVICE.unit, '-n', '40'])).stdout;
    const stopping = journal.indexOf('stopping: the running reconcile may finish');
    const applied = journal.indexOf(`"msg":"reconcile applied"`, stopping);
    assert.ok(stopping >= 0 && applied > stopping, `the run in flight finished after SIGTERM:\n${journal}`);
    assert.match(journal, /edge-reconciler stopped/);
    assert.equal((await edge.box.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVICE.listen}/healthz`], { reject: false })).stdout, '000');

    const status = JSON.parse(await edge.box.readFile(`${AGENT.stateDir}/status.json`)) as ServiceStatus;
    assert.equal(status.lastApplied?.revision, next, 'the run was not cut short');
    assert.equal(status.lastAttempted?.result, 'applied');
    assert.deepEqual(await edge.generationMismatches(status.lastApplied.generation), []);
    assert.equal(await edge.box.unitState('lod.service'), 'active', 'stopping the agent leaves the host running');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '8');
  });
});
