/**
 * A commit whose health check fails is rolled back automatically: the files come back byte for byte, the old
 * units are re-activated, the revision is marked bad and not retried, and a newer commit applies cleanly. Here
 * systemctl is a recording shim (units always look active) and the health checks are real commands; the same
 * story runs against a real systemd in test/e2e.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shimContext, SystemctlShim } from '../helpers/systemctl-shim.js';
import { reconcile } from '../../reconciler/reconcile.js';
import type { RunContext } from '../../reconciler/run-context.js';
import { StateStore } from '../../reconciler/state/state-store.js';
import { readStatus } from '../../reconciler/state/status.js';
import { git } from '../helpers/git-repo.js';
import { TINY_HOST, writeTinyRepo } from '../helpers/tiny-repo.js';

const UNIT = (version: string) => `[Unit]\nDescription=app ${version}\n\n[Service]\nExecStart=/srv/apps/app/bin/app --version ${version}\n\n[Install]\nWantedBy=multi-user.target\n`;

describe('automatic rollback when health fails', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  let repo: string;
  let root: string;
  let store: StateStore;
  let runner: SystemctlShim;
  let marker: string;

  const ctx = (): RunContext => shimContext({ root, store, repo, runner });
  const commit = async (version: string, healthy: boolean) => {
    await writeFile(join(repo, 'roles/app/templates/app.service'), UNIT(version));
    const check = healthy ? `test -f ${marker}` : `test -f ${marker}.missing`;
    await writeFile(join(repo, 'roles/app/role.yaml'), [
      'resources:',
      '  - kind: systemd-unit',
      '    name: app.service',
      '    template: app.service',
      'health:',
      '  - name: app-ready',
      '    type: command',
      `    command: [sh, -c, "${check}"]`,
      '    retries: 1',
      '',
    ].join('\n'));
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', `app ${version}`);
    return git(repo, 'rev-parse', 'HEAD');
  };

  beforeEach(async () => {
    repo = await writeTinyRepo({ edge: { health: { deadlineSeconds: 5, intervalSeconds: 0.1 } }, templates: { 'app.service': UNIT('0') } });
    root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    const stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    marker = join(stateDir, 'ready');
    await writeFile(marker, '');
    cleanup.push(repo, root, stateDir);
    store = new StateStore(stateDir);
    runner = new SystemctlShim();
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'config', 'user.email', 'test@example.com');
    await git(repo, 'config', 'user.name', 'test');
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('rolls back, marks the revision bad, refuses it next time, and applies a newer good commit', async () => {
    await commit('1', true);
    const first = await reconcile(ctx());
    assert.equal(first.result, 'applied', first.error?.message);
    const unitPath = join(root, 'etc/systemd/system/app.service');
    assert.equal(await readFile(unitPath, 'utf8'), UNIT('1'));

    const bad = await commit('2', false);
    runner.systemctl.length = 0;
    const second = await reconcile(ctx());
    assert.equal(second.result, 'rolled-back');
    assert.equal(second.error?.code, 'HEALTH_FAILED');
    assert.match(second.error?.message ?? '', /health check app-ready failed/);
    assert.equal(await readFile(unitPath, 'utf8'), UNIT('1'), 'the old unit file is back, byte for byte');
    assert.deepEqual(runner.systemctl.filter((c) => !c.startsWith('show')), [
      'daemon-reload',
      'restart app.service',
      'daemon-reload',
      'restart app.service',
    ]);

    const status = await readStatus(store, TINY_HOST);
    assert.equal(status.lastApplied?.generation, 1);
    assert.equal(status.lastAttempted?.result, 'rolled-back');
    assert.equal(status.lastAttempted?.failedCheck?.name, 'app-ready');
    assert.deepEqual((await store.badRevisions()).map((entry) => entry.revision), [bad]);
    assert.equal((await store.readGeneration(2)).result, 'rolled-back');

    const again = await reconcile(ctx());
    assert.equal(again.result, 'refused');
    assert.equal(again.error?.code, 'REVISION_BAD');
    assert.equal(await readFile(unitPath, 'utf8'), UNIT('1'));

    await commit('3', true);
    const fixed = await reconcile(ctx());
    assert.equal(fixed.result, 'applied', fixed.error?.message);
    assert.equal(await readFile(unitPath, 'utf8'), UNIT('3'));
  });

  it('prunes the generations of failed runs too, never the live one', async () => {
    await commit('1', true);
    assert.equal((await reconcile(ctx())).result, 'applied');
    for (const version of ['2', '3', '4', '5']) {
      await commit(version, false);
      const failed = await reconcile({ ...ctx(), keepGenerations: 2 });
      assert.equal(failed.result, 'rolled-back', failed.error?.message);
    }
    assert.deepEqual(await store.generations(), [1, 4, 5]);
    assert.equal((await readStatus(store, TINY_HOST)).lastApplied?.generation, 1);
  });
});

describe('a cancelled run stops its pending health wait', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('rolls the unverified generation back without marking its revision bad', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    const waiting = join(stateDir, 'health-is-waiting');
    const repo = await writeTinyRepo({
      edge: { health: { deadlineSeconds: 30, intervalSeconds: 0.2 } },
      templates: { 'app.service': UNIT('1') },
      role: {
        resources: [{ kind: 'systemd-unit', name: 'app.service', template: 'app.service' }],
        health: [{ name: 'slow', type: 'command', command: ['sh', '-c', `touch ${waiting}; exit 1`], retries: 100 }],
      },
    });
    const root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    cleanup.push(repo, root, stateDir);
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'add', '-A');
    await git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'slow health');
    const store = new StateStore(stateDir);
    const controller = new AbortController();
    const outcome = await reconcile({
      ...shimContext({ root, store, repo }),
      signal: controller.signal,
      // The daemon aborts a run when a stop outlasts its grace period; here: as soon as the health wait has begun.
      onRevision: () => {
        const poll = setInterval(() => {
          stat(waiting).then(() => {
            clearInterval(poll);
            controller.abort();
          }, () => undefined);
        }, 50);
      },
    });
    assert.equal(outcome.result, 'rolled-back');
    assert.equal(outcome.error?.code, 'SUPERSEDED');
    assert.deepEqual(await store.badRevisions(), [], 'a cancelled revision is not bad');
    await assert.rejects(readFile(join(root, 'etc/systemd/system/app.service'), 'utf8'), { code: 'ENOENT' });
  });
});
