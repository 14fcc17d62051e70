/** The load stage: every problem of a revision at once, each with its file, JSON pointer and line. */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { InvalidRevisionError, type Problem } from '../../../reconciler/errors.js';
import { loadDesiredState } from '../../../reconciler/stages/load.js';
import { EXAMPLE_REPO } from '../../helpers/paths.js';
import { writeTinyRepo, type TinyRepo } from '../../helpers/tiny-repo.js';

async function loadProblems(description: TinyRepo): Promise<Problem[]> {
  const repo = await writeTinyRepo(description);
  try {
    await loadDesiredState(repo);
    return [];
  } catch (error) {
    assert.ok(error instanceof InvalidRevisionError, String(error));
    assert.equal(error.stage, 'load');
    assert.equal(error.retry, 'invalid');
    return error.problems;
  } finally {
    await rm(repo, { recursive: true, force: true });
  }
}

describe('load stage', () => {
  it('loads the example repo: four hosts, seven roles, the standby flag and routes', async () => {
    const state = await loadDesiredState(EXAMPLE_REPO);
    assert.deepEqual([...state.hosts.keys()], ['caddy-router', 'lod-prod', 'lod-standby', 'model-gateway']);
    assert.deepEqual([...state.roles.keys()], ['base', 'firewall', 'lod', 'model-gateway', 'monitoring', 'monitoring-server', 'router']);
    assert.equal(state.hosts.get('lod-standby')?.standby, true);
    assert.equal(state.hosts.get('lod-prod')?.routes[0]?.domain, 'lod.example.com');
    assert.equal(state.edge.guards.managementInterface, 'tailscale0');
  });

  it('reports every schema problem of every file together, with pointer and line', async () => {
    const problems = await loadProblems({
      role: { resources: [{ kind: 'systemd-unit', name: 'a.service', content: 'x', enable: 'yes' }], colour: 'red' },
      host: { standby: 'no' },
    });
    const summary = problems.map((p) => `${p.code} ${p.file}:${p.line} ${p.path}`).sort();
    assert.deepEqual(summary, [
      'SCHEMA hosts/test-host.yaml:4 /standby',
      'SCHEMA roles/app/role.yaml:1 /',
      'SCHEMA roles/app/role.yaml:5 /resources/0/enable',
    ]);
    assert.match(problems.find((p) => p.path === '/')?.message ?? '', /unknown field "colour"/);
  });

  it('names the line of a yaml syntax error', async () => {
    const problems = await loadProblems({ files: { 'hosts/broken.yaml': 'address: 1.2.3.4\nroles: [a\nvars: {}\n' } });
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.code, 'YAML_SYNTAX');
    assert.equal(problems[0]?.file, 'hosts/broken.yaml');
    assert.ok(problems[0]?.line !== undefined && problems[0].line >= 2);
  });

  it('points an unknown role at the line that names it', async () => {
    const problems = await loadProblems({ host: { roles: ['app', 'missing'] } });
    assert.deepEqual(
      problems.map((p) => [p.code, p.file, p.line, p.path]),
      [['ROLE_UNKNOWN', 'hosts/test-host.yaml', 4, '/roles/1']],
    );
  });

  it('does not report a broken role twice through the hosts that use it', async () => {
    const problems = await loadProblems({ files: { 'roles/app/role.yaml': 'resources: [\n' } });
    assert.deepEqual(problems.map((p) => p.code), ['YAML_SYNTAX']);
  });

  it('reads a hook in the short form and the object form as its script and network', async () => {
    const repo = await writeTinyRepo({
      role: { hooks: { 'pre-apply': 'hooks/pre.sh', 'post-apply': { script: 'hooks/post.sh', network: true }, 'on-failure': { script: 'hooks/f.sh' } } },
      files: { 'roles/app/hooks/pre.sh': '#!/bin/sh\n', 'roles/app/hooks/post.sh': '#!/bin/sh\n', 'roles/app/hooks/f.sh': '#!/bin/sh\n' },
    });
    try {
      const state = await loadDesiredState(repo);
      assert.deepEqual(state.roles.get('app')?.hooks, {
        'pre-apply': { script: 'hooks/pre.sh', network: false },
        'post-apply': { script: 'hooks/post.sh', network: true },
        'on-failure': { script: 'hooks/f.sh', network: false },
      });
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });

  it('refuses a hook that asks for more than its script and network, naming the key', async () => {
    const problems = await loadProblems({
      role: { hooks: { 'pre-apply': { script: 'hooks/pre.sh', user: 'root' } } },
      files: { 'roles/app/hooks/pre.sh': '#!/bin/sh\n' },
    });
    assert.deepEqual(problems.map((p) => [p.code, p.path]), [['SCHEMA', '/hooks/pre-apply']]);
    assert.match(problems[0]?.message ?? '', /user/);
  });
});
