/**
 * Observability against a real systemd: the agent runs as its service; a commit gives lod-prod the example's
 * monitoring roles (the node exporter, and Prometheus with a scrape config rendered from the inventory, its
 * address pointed at the container's loopback and 1 s intervals), and Debian's real Prometheus scrapes the agent.
 * A commit that fails health is rolled back, Prometheus's own API (/api/v1/alerts) shows EdgeReconcilerRolledBack
 * pending or firing for lod-prod, and `journalctl -u edge-reconciler -p warning` shows exactly the failures of the
 * run: the failed health stage, the rollback and the run's end, at err.
 */
import assert from 'node:assert/strict';
import { head } from '../helpers/git-repo.js';
import { waitUntil } from '../helpers/wait.js';
import { EdgeHost, SERVICE } from '../helpers/e2e-host.js';

const PROMETHEUS = 'http://127.0.0.1:9090';

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
}

interface JournalEntry {
  PRIORITY: string;
  MESSAGE: string;
}

/** A journal message as the agent's JSON line; anything else (a line from another program) as `{ raw }`. */
function parsed(message: string): Record<string, unknown> {
  try {
    return JSON.parse(message) as Record<string, unknown>;
  } catch {
    return { raw: message };
  }
}

describe('e2e observability: journald priorities and a real Prometheus', function () {
  this.timeout(300_000);
  let edge: EdgeHost;
  let webhookSecret: string;

  /** The agent's journal entries (its JSON lines) since `cursor`, at `priority` or worse. */
  const agentEntries = async (priority: string, cursor?: string) => {
    const args = ['journalctl', '--no-pager', '-o', 'json', '-u', SERVICE.unit, '-p', priority, ...(cursor ? [`--after-cursor=${cursor}`] : [])];
    const { stdout } = await edge.box.exec(args);
    return stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as JournalEntry)
      .map((entry) => ({ priority: entry.PRIORITY, message: String(entry.MESSAGE) }));
  };
  const query = async (promql: string) => {
    const answer = await edge.box.httpGet(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(promql)}`);
    return (JSON.parse(answer.body) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
  };
  const evidence = async () =>
    `${await edge.evidence([SERVICE.unit, 'prometheus.service', 'prometheus-node-exporter.service'])}\n${await edge.box.journal('prometheus.service', 30)}\n${await edge.box.journal(SERVICE.unit, 60)}`;

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine builds the cached root first
    edge = await EdgeHost.boot();
  });
  after(async () => edge?.shutdown());

  it('runs the node exporter and Prometheus from the inventory, and Prometheus scrapes the agent with a host label', async () => {
    // Prometheus on lod-prod itself (the only host in this container), reaching it at 127.0.0.1, fast intervals;
    // the health deadline short enough for the failing commit below to roll back soon.
    await edge.commitAll(
      {
        'hosts/lod-prod.yaml': (text) =>
          text
            .replace('address: 100.64.0.21', 'address: 127.0.0.1')
            .replace('roles: [base, firewall, lod, monitoring]', 'roles: [base, firewall, lod, monitoring, monitoring-server]')
            .replace('vars:\n', 'vars:\n  prometheus:\n    scrapeInterval: 1s\n    evaluationInterval: 1s\n'),
        'edge.yaml': (text) => text.replace('deadlineSeconds: 60', 'deadlineSeconds: 20'),
      },
      'lod-prod: monitoring-server on loopback, 1 s intervals',
    );
    const revision = await head(edge.workRepo);
    webhookSecret = await edge.installService({ webhook: { enabled: true }, poll: { enabled: true, intervalSeconds: 3600, jitterSeconds: 0 } });
    await edge.waitUntilLive(revision, 120_000).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await evidence()}`);
    });
    for (const unit of ['prometheus.service', 'prometheus-node-exporter.service']) assert.equal(await edge.box.unitState(unit), 'active', await evidence());
    assert.equal(await edge.enabledState('prometheus-node-exporter.service'), 'enabled');

    const up = await waitUntil(
      async () => {
        const result = await query('up{job="edge-reconciler", host="lod-prod"} == 1 and on(host) edge_reconciler_rollbacks_total == 0');
        return result.length === 1 ? result : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'Prometheus to scrape the agent (up, no rollback yet)' },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${(await edge.box.httpGet(`${PROMETHEUS}/api/v1/targets`)).body}\n${await evidence()}`);
    });
    assert.equal(up?.[0]?.metric.instance, '127.0.0.1:9321');
    const node = await waitUntil(async () => ((await query('node_load1{job="node", host="lod-prod"}')).length === 1 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: 'Prometheus to scrape the node exporter',
    });
    assert.equal(node, true);
  });

  it('fires the rollback alert in Prometheus after a commit that fails health, and journalctl -p warning shows exactly that run\'s failures', async () => {
    const live = await head(edge.workRepo);
    const cursor = (await edge.box.exec(['journalctl', '--no-pager', '-u', SERVICE.unit, '-n', '0', '--show-cursor'])).stdout.match(/-- cursor: (\S+)/)?.[1];
    assert.ok(cursor, 'a journal cursor');
    const bad = await edge.commit(
      'hosts/lod-prod.yaml',
      (text) => `${text.replace('workers: 4', 'workers: 6')}health:\n  - name: never-listens\n    type: tcp\n    host: 127.0.0.1\n    port: 9\n`,
      'lod-prod: a health check that never passes',
    );
    assert.equal((await edge.sendWebhook(bad, webhookSecret)).status, 202);
    const status = await waitUntil(
      async () => {
        const current = await edge.serviceStatus();
        return current?.lastAttempted?.revision === bad && current.lastAttempted.result === 'rolled-back' ? current : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: `revision ${bad.slice(0, 12)} rolled back` },
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await evidence()}`);
    });
    assert.equal(status?.lastApplied?.revision, live, 'the host is back on the good revision');

    const alert = await waitUntil(
      async () => {
        const answer = await edge.box.httpGet(`${PROMETHEUS}/api/v1/alerts`);
        const alerts = (JSON.parse(answer.body) as { data: { alerts: Alert[] } }).data.alerts;
        return alerts.find((item) => item.labels.alertname === 'EdgeReconcilerRolledBack' && item.labels.host === 'lod-prod');
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'EdgeReconcilerRolledBack in /api/v1/alerts' },
    );
    assert.ok(alert && ['pending', 'firing'].includes(alert.state), JSON.stringify(alert));
    assert.equal(alert.labels.severity, 'warning');

    // `journalctl -u edge-reconciler -p warning`, the unit's whole journal: exactly the failures of the failed run,
    // each at err with the stable fields; the good runs' lines sit at notice, info and debug. (No --after-cursor
    // here: with a -p filter, journalctl 252 skips the first matching entry after the cursor.)
    const failures = await agentEntries('warning');
    const lines = failures.map((entry): Record<string, unknown> => ({ priority: entry.priority, ...parsed(entry.message) }));
    assert.deepEqual(
      lines.map((line) => [line.priority, line.level, line.stage, line.result, line.code, line.revision, line.host]),
      [
        ['3', 'error', 'health', 'failed', 'HEALTH_FAILED', bad, 'lod-prod'],
        ['3', 'error', 'rollback', 'rolled-back', 'HEALTH_FAILED', bad, 'lod-prod'],
        ['3', 'error', 'health', 'rolled-back', 'HEALTH_FAILED', bad, 'lod-prod'],
      ],
      JSON.stringify(failures, null, 1),
    );
    assert.match(String(lines[0]?.msg), /^stage health failed after [\d.]+ ms \[HEALTH_FAILED\]$/);
    assert.match(String(lines[1]?.msg), /^rolled back generation \d+ \(\w{12}\) to generation \d+: health failed with HEALTH_FAILED$/);
    assert.match(String(lines[2]?.msg), /^reconcile rolled-back: health check never-listens failed/);
    for (const line of lines) assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The stage lines of the good run are there, below warning, each with its duration.
    const stages = (await agentEntries('debug', cursor)).filter((entry) => entry.priority === '7').map((entry) => parsed(entry.message));
    assert.ok(stages.some((line) => line.stage === 'apply' && typeof line.durationMs === 'number'), JSON.stringify(stages));
  });
});
