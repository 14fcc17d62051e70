/**
 * `apply` with the state dir's caches against `apply` without them (the cache dir removed before every run), on the
 * same commits: the same files land under the root, byte for byte, and the same changes are planned, also when the
 * cache was damaged in between, when a secret rotates, and when a managed file is edited by hand behind the agent.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { appName, changeOneApp, generateWorkloadRepo, writeWorkloadSecrets, BENCH_HOST, appSecretName } from '../../bench/generate.js';
import { runCli } from '../helpers/cli.js';

interface ApplyJson {
  result: string;
  changes: { path: string; action: string }[];
}

/** Every file under `dir`, by relative path, with its content. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.set(relative(dir, join(entry.parentPath, entry.name)), await readFile(join(entry.parentPath, entry.name), 'utf8'));
  }
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe('apply with and without the caches', function () {
  this.timeout(120_000);
  let base: string;
  let repo: string;
  let secrets: string;

  const sandbox = async (name: string) => {
    const dir = join(base, name);
    await mkdir(join(dir, 'root'), { recursive: true });
    return { root: join(dir, 'root'), state: join(dir, 'state') };
  };
  const apply = async (box: { root: string; state: string }, cached: boolean): Promise<ApplyJson> => {
    if (!cached) await rm(join(box.state, 'cache'), { recursive: true, force: true });
    const result = await runCli(['apply', '--repo', repo, '--host', BENCH_HOST, '--root', box.root, '--state-dir', box.state, '--secrets-dir', secrets, '--dry-activate', '--json', '--quiet']);
    const json = JSON.parse(result.stdout || '{}') as ApplyJson;
    assert.ok(['applied', 'unchanged'].includes(json.result), `${result.stdout}\n${result.stderr}`);
    return json;
  };
  const changes = (json: ApplyJson) => json.changes.filter((change) => change.action !== 'unchanged').map((change) => `${change.action} ${change.path}`);
  const commit = (message: string) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-a', '-m', message]);

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-cache-apply-'));
    repo = join(base, 'repo');
    secrets = join(base, 'secrets');
    await generateWorkloadRepo(repo, 4);
    await writeWorkloadSecrets(secrets, 4);
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('lands the same bytes and plans the same changes, through changes, a damaged cache, a rotated secret and drift', async () => {
    const cached = await sandbox('cached');
    const plain = await sandbox('plain');
    const step = async (what: string) => {
      const [withCache, without] = [await apply(cached, true), await apply(plain, false)];
      assert.deepEqual(changes(withCache), changes(without), `${what}: the same changes`);
      assert.deepEqual(await snapshot(cached.root), await snapshot(plain.root), `${what}: the same files`);
      return changes(withCache);
    };
    assert.equal((await step('cold')).length, 4 * 3 + 5);
    assert.deepEqual(await step('no-op'), []);

    const release = await changeOneApp(repo, 2);
    commit(`${appName(2)}: ${release}`);
    assert.deepEqual(await step('one change'), [`update /etc/edge-reconciler/env/${appName(2)}.env`]);
    assert.ok((await readdir(join(cached.state, 'cache'))).includes('render.json'), 'the cached run kept its caches');

    // A damaged pack is not used: the run does the full work and lands the same bytes.
    const pack = join(cached.state, 'cache', 'render.json');
    await writeFile(pack, (await readFile(pack, 'utf8')).replace('APP_RELEASE=', 'APP_RELEASE=x'));
    const again = await changeOneApp(repo, 3);
    commit(`${appName(3)}: ${again}`);
    assert.deepEqual(await step('damaged cache'), [`update /etc/edge-reconciler/env/${appName(3)}.env`]);

    // A rotated secret re-renders the env file that uses it.
    await writeFile(join(secrets, appSecretName(1)), 'a-rotated-secret-value\n', { mode: 0o600 });
    assert.deepEqual(await step('rotated secret'), [`update /etc/edge-reconciler/env/${appName(1)}.env`]);

    // A managed file edited by hand (same size) is found and healed by both.
    for (const box of [cached, plain]) {
      const path = join(box.root, 'etc/caddy/sites', `${appName(4)}.caddy`);
      await writeFile(path, (await readFile(path, 'utf8')).replace('encode zstd gzip', 'encode gzip zstd'));
    }
    assert.deepEqual(await step('drift'), [`update /etc/caddy/sites/${appName(4)}.caddy`]);
    assert.deepEqual(await step('no-op after all'), []);
  });
});
