/**
 * The host config's `path` (as Flux's): the desired state lives in a folder of the repo, from a remote and from a
 * checkout alike; a revision without that folder is refused by name before anything of it is read.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHostConfig } from '../../reconciler/config/host-config.js';
import { exportRevision, type SourceOptions } from '../../reconciler/source/git.js';
import { rejection } from '../helpers/assertions.js';
import { createUpstream, startGitHttpServer, type GitHttpServer, type Upstream } from '../helpers/git-server.js';

describe('the source path: the desired state in a folder of the repo', function () {
  this.timeout(180_000);
  let root: string;
  let state: string;
  let server: GitHttpServer;
  let upstream: Upstream;

  const options = (extra: Partial<SourceOptions>): SourceOptions => ({
    repo: server.url('desired.git'),
    ref: 'release',
    mirrorDir: join(state, 'repo.git'),
    stagingParent: join(state, 'staging'),
    ...extra,
  });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-upstream-'));
    state = await mkdtemp(join(tmpdir(), 'edge-state-'));
    server = await startGitHttpServer(root);
    upstream = await createUpstream(root);
    await upstream.commit('app and its desired state', {
      'README.md': 'the app\n',
      'deploy/edge.yaml': 'version: 1\n',
      'deploy/hosts/a.yaml': 'address: 100.64.0.1\n',
    });
    await upstream.push('release');
  });
  after(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  });

  it('reads only the folder from a remote, rooted there, in memory and on disk', async () => {
    const exported = await exportRevision(options({ path: 'deploy' }));
    assert.deepEqual([...(exported.files?.keys() ?? [])].sort(), ['edge.yaml', 'hosts/a.yaml']);
    await exported.materialize();
    assert.equal(await readFile(join(exported.dir, 'hosts/a.yaml'), 'utf8'), 'address: 100.64.0.1\n');
  });

  it('reads the folder from a checkout too', async () => {
    const exported = await exportRevision(options({ repo: upstream.work, path: 'deploy' }));
    assert.deepEqual([...(exported.files?.keys() ?? [])].sort(), ['edge.yaml', 'hosts/a.yaml']);
  });

  it('refuses a revision without the folder as PATH_NOT_IN_REVISION, naming the path and the commit', async () => {
    for (const path of ['desired-state', 'README.md']) {
      const error = await rejection(exportRevision(options({ path })));
      assert.equal(error.code, 'PATH_NOT_IN_REVISION');
      assert.equal(error.retry, 'refused');
      assert.match(error.message, new RegExp(`the configured path ${path} is not a folder of [0-9a-f]{12}`));
    }
  });

  it('accepts a clean relative folder in the host config and refuses escapes and odd spellings', async () => {
    const base = 'repo: /srv/forge/desired.git\nhost: a\n';
    const config = await parseHostConfig('/etc/edge-reconciler/config.yaml', `${base}path: ops/desired-state\n`);
    assert.equal(config.path, 'ops/desired-state');
    for (const bad of ['../x', 'a/../b', '/abs', 'a/', '-x', '.', 'a b']) {
      await assert.rejects(parseHostConfig('/etc/edge-reconciler/config.yaml', `${base}path: ${JSON.stringify(bad)}\n`), /\/path/, bad);
    }
  });
});
