/**
 * App releases end to end in a sandbox root, with real git repos for the desired state and the app, real builds in
 * the namespace sandbox, and systemctl recorded: a pinned commit goes live through the `current` link, a bump
 * switches it and restarts only the app's units, a failing build is refused with nothing live changed, a release
 * that fails health is switched back and remembered as bad, tags and followed branches resolve to the SHA that is
 * recorded, old releases are pruned, and the no-op of live releases renders nothing.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { reconcile, rollbackToGeneration } from '../../reconciler/reconcile.js';
import type { RunContext } from '../../reconciler/run-context.js';
import { StateStore } from '../../reconciler/state/state-store.js';
import { readStatus } from '../../reconciler/state/status.js';
import { appRepo, type AppRepo } from '../helpers/app-release-repo.js';
import { git } from '../helpers/git-repo.js';
import { shimContext, SystemctlShim } from '../helpers/systemctl-shim.js';
import { TINY_HOST, writeTinyRepo } from '../helpers/tiny-repo.js';

const UNIT = '[Unit]\nDescription=lod\n\n[Service]\nExecStart=/usr/bin/python3 /srv/apps/lod/current/server.py\nWorkingDirectory=/srv/apps/lod/current\n\n[Install]\nWantedBy=multi-user.target\n';
const APP_URL = 'https://git.example.com/edge/lod.git';

describe('app releases (sandbox root, real git and builds)', function () {
  this.timeout(300_000);
  const cleanup: string[] = [];
  let repo: string;
  let app: AppRepo;
  let root: string;
  let store: StateStore;
  let runner: SystemctlShim;

  const ctx = (): RunContext => ({
    ...shimContext({ root, store, repo, runner }),
    apps: { insteadOf: { 'https://git.example.com/edge/': `${join(app.dir, '..')}/` }, auth: [] },
  });
  const appUrlDir = () => APP_URL.replace('https://git.example.com/edge/lod.git', app.dir);
  /** Commits the desired state: the lod role with its unit and app resource (fields of `spec` win). */
  const desire = async (spec: Record<string, unknown>, extra: { health?: unknown[]; host?: Record<string, unknown> } = {}) => {
    const role = {
      resources: [
        { kind: 'systemd-unit', name: 'lod.service', content: UNIT },
        { kind: 'systemd-unit', name: 'other.service', content: UNIT.replace('lod', 'other') },
        { kind: 'app', name: 'lod', repo: appUrl(), user: 'nobody', shared: ['data'], keep: 2, units: ['lod.service'], ...spec },
      ],
      ...(extra.health ? { health: extra.health } : {}),
    };
    await writeFile(join(repo, 'roles/app/role.yaml'), stringify(role));
    await writeFile(join(repo, `hosts/${TINY_HOST}.yaml`), stringify({ address: '100.64.0.10', roles: ['app'], ...extra.host }));
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '--allow-empty', '-m', 'desire');
    return git(repo, 'rev-parse', 'HEAD');
  };
  const appUrl = () => (appUrlDir() === app.dir ? APP_URL.replace('lod.git', app.dir.split('/').pop() ?? '') : APP_URL);
  const current = async () => readlink(join(root, 'srv/apps/lod/current'));
  const served = async () => (await readFile(join(root, 'srv/apps/lod/current/VERSION'), 'utf8')).trim();
  const restarts = () => runner.systemctl.filter((command) => /^(restart|start|stop) /.test(command));

  beforeEach(async () => {
    repo = await writeTinyRepo({ edge: { health: { deadlineSeconds: 5, intervalSeconds: 0.1 } } });
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'config', 'user.email', 'test@example.com');
    await git(repo, 'config', 'user.name', 'test');
    app = await appRepo();
    await git(app.dir, 'config', 'user.email', 'test@example.com');
    await git(app.dir, 'config', 'user.name', 'test');
    root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    const stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    store = new StateStore(stateDir);
    runner = new SystemctlShim();
    cleanup.push(repo, app.dir, root, stateDir);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('puts a pinned commit live, builds it confined, then switches to the next one restarting only its units', async () => {
    const v1 = await app.release('v1');
    await desire({ rev: v1, build: { command: ['sh', '-c', 'echo built > BUILT; test ! -w /etc'] } });
    const first = await reconcile(ctx());
    assert.equal(first.result, 'applied', first.error?.message);
    assert.equal(await current(), `releases/${v1}`);
    assert.equal(await served(), 'v1');
    assert.equal((await readFile(join(root, 'srv/apps/lod/current/BUILT'), 'utf8')).trim(), 'built');
    assert.equal(await readlink(join(root, `srv/apps/lod/releases/${v1}/data`)), '../../shared/data');
    assert.ok((await lstat(join(root, 'srv/apps/lod/shared/data'))).isDirectory());
    assert.deepEqual(first.state.releases?.map(({ app: name, sha }) => ({ name, sha })), [{ name: 'lod', sha: v1 }]);

    const v2 = await app.release('v2');
    await desire({ rev: v2, build: { command: ['sh', '-c', 'echo built > BUILT'] } });
    runner.systemctl.length = 0;
    const second = await reconcile(ctx());
    assert.equal(second.result, 'applied', second.error?.message);
    assert.equal(await current(), `releases/${v2}`);
    assert.equal(await served(), 'v2');
    assert.deepEqual(restarts(), ['restart lod.service'], 'only the app\'s unit restarts');
    const status = await readStatus(store, TINY_HOST);
    assert.deepEqual(status.apps?.map(({ app: name, sha, previous }) => ({ name, sha, previous })), [{ name: 'lod', sha: v2, previous: v1 }]);

    runner.systemctl.length = 0;
    const again = await reconcile(ctx());
    assert.equal(again.result, 'unchanged', again.error?.message);
    assert.equal(again.state.durations.render, undefined, 'the no-op of live releases renders nothing');
    assert.deepEqual(restarts(), []);

    // A live release removed by hand is drift: the next run builds it again under the same link.
    await rm(join(root, `srv/apps/lod/releases/${v2}`), { recursive: true });
    const healed = await reconcile(ctx());
    assert.equal(healed.result, 'unchanged', healed.error?.message);
    assert.notEqual(healed.state.durations.prepare, undefined, 'the fast path was not taken');
    assert.equal(await served(), 'v2');
  });

  it('refuses a failing build with its last output lines, and leaves the live release untouched', async () => {
    const v1 = await app.release('v1');
    await desire({ rev: v1 });
    assert.equal((await reconcile(ctx())).result, 'applied');
    const v2 = await app.release('v2');
    await desire({ rev: v2, build: { command: ['sh', '-c', 'echo compiling; echo "syntax error in server.py" >&2; exit 3'] } });
    runner.systemctl.length = 0;
    const failed = await reconcile(ctx());
    assert.equal(failed.result, 'invalid');
    assert.equal(failed.error?.code, 'APP_BUILD_FAILED');
    assert.equal(failed.error?.stage, 'prepare');
    assert.match(failed.error?.message ?? '', new RegExp(`app lod: build of ${v2.slice(0, 12)} exited 3 .*syntax error in server.py`));
    assert.equal(await current(), `releases/${v1}`);
    assert.deepEqual(restarts(), []);
    const releases = await readdir(join(root, 'srv/apps/lod/releases'));
    assert.deepEqual(releases, [v1], 'no half-built release is left');
    const status = await readStatus(store, TINY_HOST);
    assert.equal(status.apps?.[0]?.failed?.sha, v2);
  });

  it('switches back when the new release fails health, marks the pair bad, and tries a new app commit again', async () => {
    const healthy = { name: 'version', type: 'command', command: ['sh', '-c', `test "$(cat ${root}/srv/apps/lod/current/VERSION)" != v2`], retries: 1 };
    const v1 = await app.release('v1');
    await desire({ follow: 'main' }, { health: [healthy] });
    assert.equal((await reconcile(ctx())).result, 'applied');
    assert.equal(await current(), `releases/${v1}`);

    const v2 = await app.release('v2');
    runner.systemctl.length = 0;
    const failed = await reconcile(ctx());
    assert.equal(failed.result, 'rolled-back', failed.error?.message);
    assert.equal(await current(), `releases/${v1}`, 'the link is back on v1');
    assert.deepEqual(restarts(), ['restart lod.service', 'restart lod.service']);
    const bad = await store.badRevisions();
    assert.deepEqual(bad.map((entry) => entry.releases), [[{ app: 'lod', sha: v2, ref: 'main' }]]);

    assert.equal((await readStatus(store, TINY_HOST)).apps?.[0]?.failed?.sha, v2);
    const refused = await reconcile(ctx());
    assert.equal(refused.result, 'refused');
    assert.equal(refused.error?.code, 'REVISION_BAD');

    const v3 = await app.release('v3');
    const fixed = await reconcile(ctx());
    assert.equal(fixed.result, 'applied', fixed.error?.message);
    assert.equal(await current(), `releases/${v3}`);
    const fixedStatus = (await readStatus(store, TINY_HOST)).apps?.[0];
    assert.equal(fixedStatus?.ref, 'main');
    assert.equal(fixedStatus?.failed, undefined, 'the failure of v2 is history once v3 is live');
  });

  it('resolves a tag to its commit, prunes releases beyond keep, and rolls back by command', async () => {
    const shas: string[] = [];
    for (const version of ['v1', 'v2', 'v3', 'v4']) {
      shas.push(await app.release(version, { tag: version }));
      await desire({ tag: version });
      const outcome = await reconcile(ctx());
      assert.equal(outcome.result, 'applied', outcome.error?.message);
      assert.equal(await current(), `releases/${shas.at(-1)}`);
    }
    assert.deepEqual((await readdir(join(root, 'srv/apps/lod/releases'))).sort(), [shas[2], shas[3]].sort());
    runner.systemctl.length = 0;
    const back = await rollbackToGeneration(ctx());
    assert.equal(back.result, 'applied', back.error?.message);
    assert.equal(await current(), `releases/${shas[2]}`);
    assert.deepEqual(restarts(), ['restart lod.service']);
  });

  it('takes over a current link deployed by hand only when the app adopts it, and keeps it as the backup', async () => {
    await mkdir(join(root, 'srv/apps/lod/releases/by-hand'), { recursive: true });
    await symlink('releases/by-hand', join(root, 'srv/apps/lod/current'));
    const v1 = await app.release('v1');
    await desire({ rev: v1 });
    const refused = await reconcile(ctx());
    assert.equal(refused.error?.code, 'FILE_UNMANAGED');
    assert.equal(await current(), 'releases/by-hand');
    const healthy = { name: 'never', type: 'command', command: ['false'], retries: 0 };
    await desire({ rev: v1, adopt: true }, { health: [healthy] });
    const rolledBack = await reconcile(ctx());
    assert.equal(rolledBack.result, 'rolled-back', rolledBack.error?.message);
    assert.equal(await current(), 'releases/by-hand', 'the hand-made link is back');
    await desire({ rev: v1, adopt: true });
    assert.equal((await reconcile(ctx())).result, 'applied');
    assert.equal(await current(), `releases/${v1}`);
  });

  it('on a standby host builds and switches the release but restarts nothing', async () => {
    const v1 = await app.release('v1');
    await desire({ rev: v1 }, { host: { standby: true } });
    assert.equal((await reconcile(ctx())).result, 'applied');
    const v2 = await app.release('v2');
    await desire({ rev: v2 }, { host: { standby: true } });
    runner.systemctl.length = 0;
    const outcome = await reconcile(ctx());
    assert.equal(outcome.result, 'applied', outcome.error?.message);
    assert.equal(await current(), `releases/${v2}`);
    assert.deepEqual(restarts(), []);
  });
});
