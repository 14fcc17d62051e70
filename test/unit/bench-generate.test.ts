/** The benchmark's workload generator: a repo that loads and renders, byte for byte the same for the same N. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  appSecretName,
  BENCH_HOST,
  changeOneApp,
  FILES_PER_APP,
  generateWorkload,
  SHARED_FILES,
  writeWorkloadSecrets,
} from '../../bench/generate.js';
import { readSecretsDir } from '../../reconciler/host/secrets-dir.js';
import { DEFAULT_PATH_POLICY } from '../../reconciler/host/path-policy.js';
import { loadDesiredState } from '../../reconciler/stages/load.js';
import { renderHost, type RenderedHost } from '../../reconciler/stages/render.js';

async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const tree = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    tree.set(relative(dir, path), await readFile(path));
  }
  return tree;
}

async function renderWorkload(repoDir: string, secretsDir: string): Promise<RenderedHost> {
  const values = await readSecretsDir(secretsDir);
  const state = await loadDesiredState(repoDir);
  return renderHost(state, BENCH_HOST, { get: (name) => values.get(name), description: secretsDir }, DEFAULT_PATH_POLICY);
}

describe('bench workload generator', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-bench-test-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('writes a repo of 3 apps that loads and renders into env file, unit and site per app plus the shared files', async () => {
    await generateWorkload(join(base, 'repo'), 3);
    await writeWorkloadSecrets(join(base, 'secrets'), 3);
    const { files } = await renderWorkload(join(base, 'repo'), join(base, 'secrets'));
    assert.equal(files.length, 3 * FILES_PER_APP + SHARED_FILES);
    const paths = files.map((file) => file.path);
    for (const path of [
      '/etc/caddy/Caddyfile',
      '/etc/caddy/sites/app-2.caddy',
      '/etc/edge-reconciler/env/app-2.env',
      '/etc/edge-reconciler/ufw/base.rules',
      '/etc/systemd/system/app-2.service',
    ]) {
      assert.ok(paths.includes(path), `${path} is rendered`);
    }
    const env = files.find((file) => file.path === '/etc/edge-reconciler/env/app-2.env');
    assert.deepEqual(env?.secrets, [appSecretName(2)]);
    assert.equal(env?.content.split('\n').filter((line) => /^[A-Z_]+=/.test(line)).length, 5);
    const rules = files.find((file) => file.path === '/etc/edge-reconciler/ufw/base.rules')?.content ?? '';
    assert.match(rules, /^default deny incoming$/m);
    assert.equal(rules.split('\n').filter((line) => /^allow in on tailscale0 .*port 1000[1-3]\b/.test(line)).length, 3);
  });

  it('writes the secrets dir with 0600 files that the host adapter accepts', async () => {
    await writeWorkloadSecrets(join(base, 'secrets'), 3);
    const secrets = await readSecretsDir(join(base, 'secrets'));
    assert.deepEqual([...secrets.keys()].sort(), ['APP_1_TOKEN', 'APP_2_TOKEN', 'APP_3_TOKEN']);
    assert.equal((await stat(join(base, 'secrets', 'APP_1_TOKEN'))).mode & 0o777, 0o600);
  });

  it('writes the same bytes for the same number of apps', async () => {
    await generateWorkload(join(base, 'a'), 3);
    await generateWorkload(join(base, 'b'), 3);
    const [a, b] = [await readTree(join(base, 'a')), await readTree(join(base, 'b'))];
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [path, bytes] of a) assert.ok(bytes.equals(b.get(path) ?? Buffer.alloc(0)), `${path} differs`);
  });

  it('changes exactly one rendered file, the env file of the app, for a one-change commit', async () => {
    await generateWorkload(join(base, 'repo'), 3);
    await writeWorkloadSecrets(join(base, 'secrets'), 3);
    const before = await renderWorkload(join(base, 'repo'), join(base, 'secrets'));
    assert.equal(await changeOneApp(join(base, 'repo'), 2), 'r2');
    const after = await renderWorkload(join(base, 'repo'), join(base, 'secrets'));
    const changed = after.files.filter((file, k) => file.content !== before.files[k]?.content).map((file) => file.path);
    assert.deepEqual(changed, ['/etc/edge-reconciler/env/app-2.env']);
  });
});
