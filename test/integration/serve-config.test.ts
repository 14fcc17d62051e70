/**
 * `edge-reconciler serve` (and `reconcile` without an agent) as real processes, for what the host config decides
 * before anything runs: a sandbox root needs `--dry-activate` as `apply` does, and credentials in the repo URL
 * authenticate the fetch but never show in the agent's output.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { exampleAppsConfig } from '../helpers/app-repos.js';
import { writeSecretsDir } from '../helpers/cli.js';
import { createUpstream, startGitHttpServer, type GitHttpServer, type Upstream } from '../helpers/git-server.js';
import { CLI, EXAMPLE_REPO } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

const TOKEN = 'ghp_ServeUrlTokenNeverShown24680';

describe('serve: what the host config decides before anything runs', function () {
  this.timeout(120_000);
  let base: string;
  let upstream: Upstream;
  let server: GitHttpServer;
  let secretsDir: string;

  const writeConfig = async (extra: Record<string, unknown>) => {
    const root = await mkdtemp(join(base, 'root-'));
    const stateDir = await mkdtemp(join(base, 'state-'));
    const config = join(stateDir, 'config.yaml');
    const document = { repo: server.url('desired.git'), ref: 'release', host: 'lod-prod', root, stateDir, secretsDir, listen: '127.0.0.1:0', poll: { enabled: false }, drift: { watch: false }, waves: { enabled: false }, apps: await exampleAppsConfig(), ...extra };
    await writeFile(config, stringify(document), { mode: 0o600 });
    return { config, root, stateDir };
  };

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-serve-config-'));
    secretsDir = await writeSecretsDir();
    upstream = await createUpstream(base);
    await cp(EXAMPLE_REPO, upstream.work, { recursive: true });
    await upstream.commit('example desired state', {});
    await upstream.push('release');
    server = await startGitHttpServer(base, { token: TOKEN });
  });
  after(async () => {
    await server.close();
    await rm(base, { recursive: true, force: true });
    await rm(secretsDir, { recursive: true, force: true });
  });

  it('refuses a sandbox root without --dry-activate (ROOT_NEEDS_DRY_ACTIVATE), as apply does, before fetching anything', async () => {
    const { config, root, stateDir } = await writeConfig({});
    const requestsBefore = server.requests.length;
    const served = await execa(process.execPath, [CLI, 'serve', '--config', config], { reject: false, timeout: 60_000 });
    assert.equal(served.exitCode, 1, served.stderr);
    assert.match(served.stderr, /\[ROOT_NEEDS_DRY_ACTIVATE\]/);
    assert.match(served.stderr, new RegExp(`"root" of ${config}: ${root} applies files into a sandbox: add --dry-activate`));

    const reconciled = await execa(process.execPath, [CLI, 'reconcile', '--config', config], { reject: false, timeout: 60_000 });
    assert.equal(reconciled.exitCode, 1, reconciled.stderr);
    assert.match(reconciled.stderr, /\[ROOT_NEEDS_DRY_ACTIVATE\]/);
    assert.equal(server.requests.length, requestsBefore, 'nothing was fetched');
    assert.deepEqual((await readdir(stateDir)).sort(), ['config.yaml'], 'nothing was written to the state dir');
  });

  it('authenticates with the credentials of the repo URL and never shows them in its output', async () => {
    const url = server.url('desired.git').replace('http://', `http://deploy:${TOKEN}@`);
    const { config } = await writeConfig({ repo: url });
    const child = execa(process.execPath, [CLI, 'serve', '--config', config, '--dry-activate'], { reject: false, buffer: false, all: true });
    let output = '';
    child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      const started = await until('the start-up line', async () => output.split('\n').find((line) => line.includes('"repo"') && line.includes('edge-reconciler serving')));
      const line = JSON.parse(started) as { repo: string; url: string };
      assert.equal(line.repo, server.url('desired.git'), `the start-up line shows the repo without its userinfo: ${started}`);
      const head = await upstream.git(['rev-parse', 'release']);
      await until('the commit to go live', async () => {
        const status = (await (await fetch(`${line.url}/status`)).json()) as { lastApplied?: { revision: string } };
        return status.lastApplied?.revision === head ? true : undefined;
      });
      assert.ok(server.requests.length > 0 && server.requests.every((request) => request.authorized), 'every fetch request carried the credentials');
    } finally {
      child.kill('SIGTERM');
      await child;
    }
    assert.ok(!output.includes(TOKEN), `the token shows in the output:\n${output}`);
    assert.ok(!output.includes(Buffer.from(`deploy:${TOKEN}`).toString('base64')));
  });
});
