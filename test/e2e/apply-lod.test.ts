/**
 * `apply` of the lod-prod host against a real systemd: an empty VM converges, a changed env variable restarts only
 * the unit that reads it, a revert commit brings the previous state back, a unit removed from the repo goes away.
 * Each test boots its own container (about 1 s) and runs the agent inside it as root on `/`.
 */
import assert from 'node:assert/strict';
import { head } from '../helpers/git-repo.js';
import { EdgeHost } from '../helpers/e2e-host.js';

/** What the lod role manages on lod-prod, besides the base role's files. */
const MANAGED = ['/etc/systemd/system', '/etc/edge-reconciler', '/etc/caddy', '/etc/logrotate.d/edge-apps', '/etc/tmpfiles.d/edge-dirs.conf', '/etc/systemd/journald.conf.d'];

const REMOVE_BACKUP_TIMER = (text: string) =>
  text.replace(/ {2}- kind: systemd-unit\n {4}name: lod-backup\.timer\n {4}template: lod-backup\.timer\.hbs\n/, '');

describe('e2e apply: lod-prod on a real systemd', function () {
  this.timeout(180_000);
  let edge: EdgeHost;

  beforeEach(async function () {
    this.timeout(15 * 60_000); // a fresh machine builds the cached root first
    edge = await EdgeHost.boot();
  });
  afterEach(async () => edge?.shutdown());

  it('converges an empty host: units active, the app answers, env files 0600 root, status names the generation', async () => {
    const caddyPid = await edge.box.mainPid('caddy.service');
    const applied = await edge.applyOk();
    assert.equal(applied.generation, 1);
    assert.equal(applied.revision, await head(edge.workRepo));

    for (const unit of ['lod.service', 'lod-backup.timer']) {
      assert.equal(await edge.box.unitState(unit), 'active', `${unit}\n${await edge.evidence([unit])}`);
      assert.equal(await edge.enabledState(unit), 'enabled', unit);
    }
    assert.deepEqual(await edge.box.httpGet('http://127.0.0.1:8080/healthz'), { status: 200, body: 'ok' });
    const app = await edge.lodEnv();
    assert.equal(app.LOD_WORKERS, '4');
    assert.equal(app.LOD_HOST, 'lod-prod');
    assert.notEqual(await edge.unitProperty('lod.service', 'ExecMainPID'), '0');
    assert.match(await edge.box.readFile('/etc/edge-reconciler/env/lod.env'), /^LOD_WORKERS=4$/m);
    const envFiles = await edge.snapshot(['/etc/edge-reconciler/env']);
    assert.deepEqual([...envFiles.keys()], ['/etc/edge-reconciler/env/lod.env']);
    for (const [path, attributes] of envFiles) assert.match(attributes, /^600 root:root /, path);
    assert.deepEqual(await edge.generationMismatches(1), []);

    const status = await edge.status();
    assert.equal(status.lastApplied?.generation, 1);
    assert.equal(status.lastApplied?.revision, applied.revision);
    assert.equal(status.lastAttempted?.result, 'applied');
    assert.deepEqual(status.badRevisions, []);

    assert.equal(await edge.box.unitState('caddy.service'), 'active');
    assert.equal(await edge.box.mainPid('caddy.service'), caddyPid, 'caddy is not lod-prod\'s: it was left alone');
    assert.equal((await edge.box.httpGet('http://127.0.0.1/')).status, 200);

    const again = await edge.apply();
    assert.equal(again.exitCode, 0);
    assert.equal(again.json?.result, 'unchanged');
    assert.deepEqual(again.json?.commands, []);
  });

  it('restarts only the unit that reads a changed env variable, and the app sees the new value', async () => {
    await edge.applyOk();
    const pidsBefore = {
      lod: await edge.box.mainPid('lod.service'),
      caddy: await edge.box.mainPid('caddy.service'),
      journald: await edge.box.mainPid('systemd-journald.service'),
      timer: await edge.unitProperty('lod-backup.timer', 'ActiveEnterTimestampMonotonic'),
    };

    await edge.commit('hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    const applied = await edge.applyOk();
    assert.deepEqual(applied.changes, [{ path: '/etc/edge-reconciler/env/lod.env', action: 'update' }]);
    assert.deepEqual(applied.commands.filter((argv) => argv[0] === 'systemctl').map((argv) => argv.join(' ')), ['systemctl restart lod.service']);

    const lodPid = await edge.box.mainPid('lod.service');
    assert.ok(lodPid > 0 && lodPid !== pidsBefore.lod, `lod.service was not restarted (MainPID ${pidsBefore.lod} → ${lodPid})`);
    assert.equal(await edge.box.mainPid('caddy.service'), pidsBefore.caddy, 'caddy was restarted');
    assert.equal(await edge.box.mainPid('systemd-journald.service'), pidsBefore.journald, 'journald was restarted');
    assert.equal(await edge.unitProperty('lod-backup.timer', 'ActiveEnterTimestampMonotonic'), pidsBefore.timer, 'the timer was restarted');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '6');
    assert.equal((await edge.lodEnv()).pid, lodPid);
  });

  it('brings the previous files and the previous app back when the commit is reverted', async () => {
    await edge.applyOk();
    const original = await edge.snapshot(MANAGED);
    await edge.commitAll(
      {
        'hosts/lod-prod.yaml': (text) => text.replace('workers: 4', 'workers: 7'),
        'roles/lod/templates/lod.service.hbs': (text) => text.replace('RestartSec=2', 'RestartSec=5'),
      },
      'lod: 7 workers, slower restarts',
    );
    await edge.applyOk();
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '7');
    assert.equal(await edge.unitProperty('lod.service', 'RestartUSec'), '5s');
    assert.notDeepEqual(await edge.snapshot(MANAGED), original);

    const revert = await edge.revert();
    const applied = await edge.applyOk();
    assert.equal(applied.revision, revert);
    assert.equal(applied.generation, 3);
    assert.deepEqual(await edge.snapshot(MANAGED), original, 'every managed file is back, byte for byte, with its mode and owner');
    assert.equal(await edge.box.unitState('lod.service'), 'active');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '4');
    assert.equal(await edge.unitProperty('lod.service', 'RestartUSec'), '2s', 'systemd runs the reverted unit file');
    assert.equal((await edge.status()).lastApplied?.generation, 3);
  });

  it('stops and disables a unit removed from the repo, and removes its file', async () => {
    await edge.applyOk();
    assert.equal(await edge.box.unitState('lod-backup.timer'), 'active');
    const lodPid = await edge.box.mainPid('lod.service');

    await edge.commit('roles/lod/role.yaml', REMOVE_BACKUP_TIMER);
    const applied = await edge.applyOk();
    assert.deepEqual(applied.changes, [{ path: '/etc/systemd/system/lod-backup.timer', action: 'delete' }]);

    assert.equal(await edge.box.unitState('lod-backup.timer'), 'inactive');
    assert.equal(await edge.enabledState('lod-backup.timer'), 'not-found');
    const left = await edge.snapshot(['/etc/systemd/system']);
    assert.deepEqual([...left.keys()].filter((path) => path.includes('lod-backup.timer')), [], 'no unit file nor timers.target.wants link is left');
    assert.doesNotMatch((await edge.box.exec(['systemctl', 'list-timers', '--all', '--no-pager'])).stdout, /lod-backup/);
    assert.equal(await edge.box.mainPid('lod.service'), lodPid, 'lod.service itself was not touched');
    assert.equal(await edge.box.unitState('lod-backup.service'), 'inactive');
    assert.ok(left.has('/etc/systemd/system/lod-backup.service'), 'the service the timer started is still managed');
  });
});
