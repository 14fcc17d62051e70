/**
 * `plan` of the example hosts into sandbox roots: what would be created, updated and deleted, the activation it
 * implies, and env values that never show.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_PATH_POLICY } from '../../reconciler/host/path-policy.js';
import { loadDesiredState } from '../../reconciler/stages/load.js';
import { renderHost } from '../../reconciler/stages/render.js';
import { copyExampleRepo, EXAMPLE_SECRETS, runCli, writeSecretsDir } from '../helpers/cli.js';
import { EXAMPLE_REPO } from '../helpers/paths.js';

interface JsonPlan {
  host: string;
  changed: boolean;
  changes: { path: string; action: string; diff: string; sensitive: boolean }[];
  activation: { start: string[]; enable: string[]; restart: string[]; daemonReload: boolean; caddyReload: boolean; firewall: boolean; run: string[][] };
}

/** A commit of lod as `rev:` pins it: plan without a state dir fetches nothing, so any full SHA will do. */
const LOD_REV = '0123456789abcdef0123456789abcdef01234567';

/**
 * A copy of the example whose lod release is pinned by `rev:` instead of a tag: without a state dir, plan knows
 * the `current` link of a pinned commit (a tag is resolved only by apply), so a live root can match it.
 */
async function pinnedExampleRepo(): Promise<string> {
  const repo = await copyExampleRepo();
  const role = join(repo, 'roles/lod/role.yaml');
  await writeFile(role, (await readFile(role, 'utf8')).replace(/tag: .*/, `rev: ${LOD_REV}`));
  return repo;
}

/** Writes the host's rendered files (and the release's `current` link) into `root`, as an apply would. */
async function materialize(root: string, host: string, secrets: Record<string, string>, repo = EXAMPLE_REPO): Promise<void> {
  const state = await loadDesiredState(repo);
  const { files } = renderHost(state, host, { get: (name) => secrets[name], description: 'test' }, DEFAULT_PATH_POLICY);
  for (const file of files) {
    const path = join(root, file.path);
    await mkdir(dirname(path), { recursive: true });
    if (file.link) await symlink(file.content, path);
    else await writeFile(path, file.content, { mode: file.mode });
  }
}

describe('plan', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  let secretsDir: string;
  const newRoot = async () => {
    const root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    cleanup.push(root);
    return root;
  };

  before(async () => {
    secretsDir = await writeSecretsDir();
    cleanup.push(secretsDir);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('lists every file of lod-prod to create and every unit to start, with exit 2, into an empty root', async () => {
    const root = await newRoot();
    const result = await runCli(['plan', '--repo', EXAMPLE_REPO, '--host', 'lod-prod', '--root', root, '--secrets-dir', secretsDir, '--json']);
    assert.equal(result.exitCode, 2, result.stderr);
    const plan = JSON.parse(result.stdout) as JsonPlan;
    const paths = plan.changes.map((change) => `${change.action} ${change.path}`);
    assert.deepEqual(paths, [
      'create /etc/edge-reconciler/env/lod.env',
      'create /etc/edge-reconciler/ufw/base.rules',
      'create /etc/edge-reconciler/ufw/lod.rules',
      'create /etc/edge-reconciler/ufw/monitoring.rules',
      'create /etc/logrotate.d/edge-apps',
      'create /etc/systemd/journald.conf.d/50-edge.conf',
      'create /etc/systemd/system/lod-backup.service',
      'create /etc/systemd/system/lod-backup.timer',
      'create /etc/systemd/system/lod.service',
      'create /etc/systemd/system/prometheus-node-exporter.service',
      'create /etc/tmpfiles.d/edge-dirs.conf',
      'create /srv/apps/lod/current',
    ]);
    assert.deepEqual(plan.activation.start, ['lod-backup.timer', 'lod.service', 'prometheus-node-exporter.service']);
    assert.deepEqual(plan.activation.enable, ['lod-backup.timer', 'lod.service', 'prometheus-node-exporter.service']);
    assert.equal(plan.activation.daemonReload, true);
    assert.equal(plan.activation.firewall, true);
    assert.equal(plan.activation.caddyReload, false);
    assert.deepEqual(plan.activation.run, [['systemd-tmpfiles', '--create', '/etc/tmpfiles.d/edge-dirs.conf']]);
    const env = plan.changes.find((change) => change.path.endsWith('lod.env'));
    assert.equal(env?.sensitive, true);
    assert.match(env?.diff ?? '', /\+DATABASE_URL=<added>/);
  });

  it('shows the same plan in human form, with diffs and no secret value', async () => {
    const root = await newRoot();
    const result = await runCli(['plan', '--repo', EXAMPLE_REPO, '--host', 'lod-prod', '--root', root, '--secrets-dir', secretsDir]);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.match(result.stdout, /plan for lod-prod .*: 12 to create, 0 to update, 0 to delete, 0 unchanged/);
    assert.match(result.stdout, /\+ \/etc\/systemd\/system\/lod\.service/);
    assert.match(result.stdout, /\+\[Service\]/);
    assert.match(result.stdout, /start lod\.service {2}\(\/etc\/edge-reconciler\/env\/lod\.env, \/etc\/systemd\/system\/lod\.service, \/srv\/apps\/lod\/current\)/);
    assert.match(result.stdout, /\+ \/srv\/apps\/lod\/current {2}app lod\/app\/lod\n {4}\+> releases\/\(tag v1, resolved when applied\)/);
    for (const value of Object.values(EXAMPLE_SECRETS)) assert.ok(!result.stdout.includes(value));
  });

  it('installs but does not start units on the standby host, but for the node exporter (onStandby: run)', async () => {
    const root = await newRoot();
    const result = await runCli(['plan', '--repo', EXAMPLE_REPO, '--host', 'lod-standby', '--root', root, '--secrets-dir', secretsDir, '--json']);
    const plan = JSON.parse(result.stdout) as JsonPlan;
    assert.ok(plan.changes.some((change) => change.path === '/etc/systemd/system/lod.service'));
    assert.deepEqual(plan.activation.start, ['prometheus-node-exporter.service']);
    assert.deepEqual(plan.activation.enable, ['prometheus-node-exporter.service']);
  });

  it('exits 0 with nothing to do when the root already matches', async () => {
    const root = await newRoot();
    const repo = await pinnedExampleRepo();
    cleanup.push(repo);
    await materialize(root, 'lod-prod', EXAMPLE_SECRETS, repo);
    const result = await runCli(['plan', '--repo', repo, '--host', 'lod-prod', '--root', root, '--secrets-dir', secretsDir, '--json']);
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    const plan = JSON.parse(result.stdout) as JsonPlan;
    assert.ok(plan.changes.every((change) => change.action === 'unchanged'));
    assert.deepEqual(plan.activation.restart, []);
  });

  it('restarts only the unit whose env file changed, and masks the changed value', async () => {
    const root = await newRoot();
    const repo = await pinnedExampleRepo();
    cleanup.push(repo);
    await materialize(root, 'lod-prod', { ...EXAMPLE_SECRETS, LOD_SESSION_SECRET: 'the-old-session-secret' }, repo);
    const result = await runCli(['plan', '--repo', repo, '--host', 'lod-prod', '--root', root, '--secrets-dir', secretsDir]);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.match(result.stdout, /~SESSION_SECRET=<changed>/);
    assert.match(result.stdout, /restart lod\.service {2}\(\/etc\/edge-reconciler\/env\/lod\.env\)/);
    assert.doesNotMatch(result.stdout, /restart lod-backup/);
    assert.ok(!result.stdout.includes('the-old-session-secret'));
    assert.ok(!result.stdout.includes(EXAMPLE_SECRETS.LOD_SESSION_SECRET as string));
  });

  it('reloads caddy when the router\'s routes change', async () => {
    const root = await newRoot();
    await materialize(root, 'caddy-router', EXAMPLE_SECRETS);
    await writeFile(join(root, 'etc/caddy/sites/routes.caddy'), '# an older version\n');
    const result = await runCli(['plan', '--repo', EXAMPLE_REPO, '--host', 'caddy-router', '--root', root, '--json']);
    assert.equal(result.exitCode, 2, result.stderr);
    const plan = JSON.parse(result.stdout) as JsonPlan;
    assert.deepEqual(plan.changes.filter((c) => c.action !== 'unchanged').map((c) => c.path), ['/etc/caddy/sites/routes.caddy']);
    assert.equal(plan.activation.caddyReload, true);
    assert.equal(plan.activation.daemonReload, false);
  });

  it('fails with exit 1 and names the host when it is unknown', async () => {
    const result = await runCli(['plan', '--repo', EXAMPLE_REPO, '--host', 'nope', '--root', await newRoot()]);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /host "nope" has no hosts\/nope\.yaml.*\[HOST_UNKNOWN\]/);
  });
});
