/**
 * The shipped monitoring (monitoring/): the alert rules pass their `promtool test rules` unit tests, and every
 * metric and label that the rules and the Grafana dashboard query exists in a real `/metrics` scrape of a running
 * agent after a run (the labels the scrape config adds, `host`, `instance` and `job`, and Prometheus's own `up`
 * excepted).
 */
import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { writeSecretsDir } from '../helpers/cli.js';
import { exampleGitRepo, head } from '../helpers/git-repo.js';
import { CLI } from '../helpers/paths.js';
import { dashboardQueries, MONITORING, namesOf, ruleQueries, scrapedNames, type Query } from '../helpers/promql.js';
import { until } from '../helpers/wait.js';
import { exampleAppsConfig } from '../helpers/app-repos.js';

/** Labels Prometheus adds to every scraped series: `host` from the inventory (scrape config), and its own two. */
const TARGET_LABELS = new Set(['host', 'instance', 'job', '__name__']);
/** Series Prometheus makes itself for every target. */
const SYNTHETIC_METRICS = new Set(['up']);

async function promtool(args: string[], cwd?: string) {
  const result = await execa('promtool', args, { reject: false, all: true, ...(cwd ? { cwd } : {}) });
  if (result.failed && (result as { code?: string }).code === 'ENOENT') {
    throw new Error('promtool is not installed: install the Debian package prometheus (bash systemd/install-deps.sh --e2e)');
  }
  return result;
}

/** Every metric or label of `queries` missing from the scrape, as `where: name`. */
function missingFrom(scrape: Map<string, Set<string>>, queries: Query[]): string[] {
  const labelsInScrape = new Set([...scrape.values()].flatMap((labels) => [...labels]));
  const missing: string[] = [];
  for (const query of queries) {
    const names = namesOf(query.expr, query.where);
    assert.ok(names.metrics.length > 0, `${query.where}: no metric in ${query.expr}`);
    for (const metric of names.metrics) {
      if (!SYNTHETIC_METRICS.has(metric) && !scrape.has(metric)) missing.push(`${query.where}: metric ${metric}`);
    }
    for (const label of [...names.labels, ...query.printed]) {
      if (!TARGET_LABELS.has(label) && !labelsInScrape.has(label)) missing.push(`${query.where}: label ${label}`);
    }
  }
  return missing;
}

describe('monitoring: the alert rules and the dashboard', function () {
  this.timeout(120_000);
  const cleanup: string[] = [];
  let agent: ResultPromise | undefined;

  after(async () => {
    agent?.kill('SIGTERM');
    await agent;
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('promtool test rules passes every unit test of the alert rules, and check rules finds them valid', async () => {
    const tested = await promtool(['test', 'rules', MONITORING.ruleTests], dirname(MONITORING.ruleTests));
    assert.equal(tested.exitCode, 0, tested.all);
    assert.match(String(tested.all), /SUCCESS/);
    const checked = await promtool(['check', 'rules', MONITORING.rules]);
    assert.equal(checked.exitCode, 0, checked.all);
    assert.match(String(checked.all), /SUCCESS: 9 rules found/);
  });

  it('every alert rule and dashboard panel parses as PromQL, and queries only metrics and labels a running agent exposes after a run', async () => {
    const base = await mkdtemp(join(tmpdir(), 'edge-monitoring-'));
    const secretsDir = await writeSecretsDir();
    cleanup.push(base, secretsDir);
    const work = await exampleGitRepo(base);
    const bare = join(base, 'desired.git');
    await execa('git', ['clone', '-q', '--bare', work, bare]);
    const config = join(base, 'config.yaml');
    await writeFile(
      config,
      stringify({
        repo: bare,
        ref: 'release',
        host: 'lod-prod',
        root: await mkdtemp(join(base, 'root-')),
        stateDir: await mkdtemp(join(base, 'state-')),
        secretsDir,
        listen: '127.0.0.1:0',
        webhook: { enabled: false },
        poll: { enabled: true, intervalSeconds: 3600, jitterSeconds: 0 },
        // A lone agent: the hosts of the example's earlier waves do not exist here.
        waves: { enabled: false },
        // The example's apps come from their own repos, made from examples/apps.
        apps: await exampleAppsConfig(),
      }),
      { mode: 0o600 },
    );
    agent = execa(process.execPath, [CLI, 'serve', '--config', config, '--dry-activate'], { reject: false, buffer: false });
    const lines: { url?: string }[] = [];
    let pending = '';
    agent.stderr?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) if (line.startsWith('{')) lines.push(JSON.parse(line) as { url?: string });
    });
    const url = await until('the agent to listen', async () => lines.find((line) => line.url)?.url);
    const revision = await head(work);
    await until('the first run to apply', async () => {
      const status = (await (await fetch(`${url}/status`)).json()) as { lastApplied?: { revision: string } };
      return status.lastApplied?.revision === revision ? true : undefined;
    });
    // The status is written before the run's metrics are recorded: wait for the scrape to show the run.
    const scrape = await until('the run in /metrics', async () => {
      const names = scrapedNames(await (await fetch(`${url}/metrics`)).text());
      return names.has('edge_reconciler_reconciles_total') ? names : undefined;
    });

    const rules = await ruleQueries();
    const panels = await dashboardQueries();
    assert.equal(rules.length, 9);
    assert.ok(panels.length >= 12, `the dashboard has ${panels.length} queries`);
    assert.deepEqual(missingFrom(scrape, [...rules, ...panels]), []);
    // The scrape carries no host label: Prometheus's scrape config adds it from the inventory.
    assert.ok(![...scrape.values()].some((labels) => labels.has('host')), 'a metric labels itself with host');
  });

  it('names what is missing: a metric the agent does not expose, a label no series carries, a syntax error', () => {
    const scrape = scrapedNames('edge_reconciler_drift_files 0\nedge_reconciler_reconciles_total{result="applied"} 1\n');
    assert.deepEqual(
      missingFrom(scrape, [
        { where: 'rule A', expr: 'sum by (host, result) (edge_reconciler_reconciles_total) > 0', printed: ['host'] },
        { where: 'rule B', expr: 'edge_reconciler_drift_file > 0', printed: [] },
        { where: 'panel "C" A', expr: 'sum by (stage) (edge_reconciler_drift_files)', printed: ['code'] },
      ]),
      ['rule B: metric edge_reconciler_drift_file', 'panel "C" A: label stage', 'panel "C" A: label code'],
    );
    assert.throws(() => namesOf('sum by (host (up)', 'rule D'), /rule D: PromQL syntax error/);
  });
});
