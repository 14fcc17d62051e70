/**
 * The example desired-state's monitoring: every host runs the node exporter (role monitoring), and caddy-router
 * runs Prometheus (role monitoring-server) with a config rendered from the inventory, a target with a `host` label
 * per host's agent and node exporter, and the project's alert rules beside it. `check` validates both with the real
 * promtool; adding a host file adds its targets; a broken config is refused naming the file; a machine without
 * promtool gets an error that says so.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_PATH_POLICY } from '../../reconciler/host/path-policy.js';
import { loadDesiredState } from '../../reconciler/stages/load.js';
import { renderHost } from '../../reconciler/stages/render.js';
import { placeholderSecrets } from '../../renderers/template.js';
import { copyExampleRepo, runCli } from '../helpers/cli.js';
import { EXAMPLE_REPO } from '../helpers/paths.js';
import { MONITORING } from '../helpers/promql.js';

const PROMETHEUS_CONFIG = '/etc/prometheus/edge-reconciler/prometheus.yml';
const RULES = '/etc/prometheus/edge-reconciler/edge-reconciler.rules.yml';

interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[]; labels: { host: string } }[];
}

/** The rendered files of `host` in `repo`: path → content. */
async function rendered(repo: string, host: string): Promise<Map<string, string>> {
  const state = await loadDesiredState(repo);
  return new Map(renderHost(state, host, placeholderSecrets, DEFAULT_PATH_POLICY).files.map((file) => [file.path, file.content]));
}

/** Each job's targets as `host=address:port`. */
function targetsOf(config: string): Record<string, string[]> {
  const document = parseYaml(config) as { scrape_configs: ScrapeConfig[] };
  return Object.fromEntries(
    document.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((group) => group.targets.map((target) => `${group.labels.host}=${target}`))]),
  );
}

describe('monitoring in the example desired-state', function () {
  this.timeout(120_000);
  const cleanup: string[] = [];
  after(async () => Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true }))));

  it('every host runs the node exporter with the seed collectors; caddy-router scrapes every agent and node exporter by its mesh address, labelled host', async () => {
    for (const host of ['caddy-router', 'lod-prod', 'lod-standby', 'model-gateway']) {
      const unit = (await rendered(EXAMPLE_REPO, host)).get('/etc/systemd/system/prometheus-node-exporter.service');
      assert.ok(unit, `${host} has no node exporter`);
      for (const collector of ['cpu', 'meminfo', 'loadavg', 'diskstats', 'netdev', 'processes']) assert.match(unit, new RegExp(`--collector\\.${collector}\\b`));
      assert.match(unit, /--collector\.disable-defaults/);
    }
    const router = await rendered(EXAMPLE_REPO, 'caddy-router');
    assert.deepEqual(targetsOf(router.get(PROMETHEUS_CONFIG) ?? ''), {
      'edge-reconciler': ['caddy-router=100.64.0.10:9321', 'lod-prod=100.64.0.21:9321', 'lod-standby=100.64.0.22:9321', 'model-gateway=100.64.0.30:9321'],
      node: ['caddy-router=100.64.0.10:9100', 'lod-prod=100.64.0.21:9100', 'lod-standby=100.64.0.22:9100', 'model-gateway=100.64.0.30:9100'],
    });
    assert.equal(router.get(RULES), await readFile(MONITORING.rules, 'utf8'), 'the role ships the project\'s alert rules unchanged');
    assert.equal((await rendered(EXAMPLE_REPO, 'lod-prod')).get(PROMETHEUS_CONFIG), undefined, 'only the monitoring-server host runs Prometheus');
  });

  it('a new host file adds its targets, and check validates the new config with promtool', async () => {
    const repo = await copyExampleRepo();
    cleanup.push(repo);
    await writeFile(join(repo, 'hosts', 'edge-42.yaml'), 'address: 100.64.0.42\nroles: [base, firewall, monitoring]\nvars:\n  monitoring:\n    agentPort: 9400\n');
    await writeFile(join(repo, 'hosts', 'bare-43.yaml'), 'address: 100.64.0.43\nroles: [base]\n');
    const targets = targetsOf((await rendered(repo, 'caddy-router')).get(PROMETHEUS_CONFIG) ?? '');
    assert.ok(targets['edge-reconciler']?.includes('edge-42=100.64.0.42:9400'), JSON.stringify(targets));
    assert.ok(targets['edge-reconciler']?.includes('bare-43=100.64.0.43:9321'), 'every host runs the agent');
    assert.ok(targets.node?.includes('edge-42=100.64.0.42:9100'), JSON.stringify(targets));
    assert.ok(!targets.node?.some((target) => target.startsWith('bare-43=')), 'no node exporter target for a host without the monitoring role');
    const check = await runCli(['check', '--repo', repo, '--host', 'caddy-router']);
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  });

  it('check refuses a Prometheus config promtool rejects, naming the template and the file', async () => {
    const repo = await copyExampleRepo();
    cleanup.push(repo);
    const role = join(repo, 'roles', 'monitoring-server', 'role.yaml');
    await writeFile(role, (await readFile(role, 'utf8')).replace('scrapeInterval: 30s', 'scrapeInterval: soon'));
    const check = await runCli(['check', '--repo', repo, '--host', 'caddy-router']);
    assert.equal(check.exitCode, 1, check.stdout);
    const output = check.stdout + check.stderr;
    assert.match(output, /FILE_VALIDATE/);
    assert.match(output, /prometheus\.yml\.hbs/);
    assert.match(output, /promtool check config --syntax-only %s" failed for \/etc\/prometheus\/edge-reconciler\/prometheus\.yml/);
  });

  it('without promtool, check says it is not installed for both Prometheus files', async () => {
    const bin = await mkdtemp(join(tmpdir(), 'edge-bin-'));
    cleanup.push(bin);
    // Every tool check uses but promtool, from where this machine has them.
    for (const tool of ['caddy', 'systemd-analyze', 'logrotate', 'systemd-tmpfiles', 'git', 'ufw', 'iptables', 'unshare', 'setpriv', 'mount', 'sh', 'env', 'timeout']) {
      const found = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
      if (found.stdout.trim().startsWith('/')) await symlink(found.stdout.trim(), join(bin, tool));
    }
    const check = await runCli(['check', '--repo', EXAMPLE_REPO, '--host', 'caddy-router'], { env: { PATH: bin } });
    assert.equal(check.exitCode, 1, check.stdout);
    const output = check.stdout + check.stderr;
    for (const file of [PROMETHEUS_CONFIG, RULES]) {
      assert.match(output, new RegExp(`promtool[^\\n]*for ${file.replaceAll('.', '\\.')} cannot run: promtool is not installed \\(or not on PATH\\)`));
    }
  });
});
