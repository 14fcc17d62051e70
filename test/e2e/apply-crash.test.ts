/**
 * A power cut in the middle of apply on a real systemd: the agent is SIGKILLed after some files of the new
 * generation are written (EDGE_CRASH_AT, see reconciler/crash-points.ts). `recover` must leave the host exactly on
 * the old generation (files and running units), and the next `apply` must converge it to the new one.
 */
import assert from 'node:assert/strict';
import { AGENT, EdgeHost, KILLED } from '../helpers/e2e-host.js';

describe('e2e apply: SIGKILL in the middle of apply', function () {
  this.timeout(180_000);
  let edge: EdgeHost;

  before(async function () {
    this.timeout(15 * 60_000);
    edge = await EdgeHost.boot();
  });
  after(async () => edge?.shutdown());

  it('recovers a consistent host: recover puts the old generation back, the next apply converges to the new one', async () => {
    await edge.applyOk();
    const old = await edge.snapshot(['/etc/systemd/system', '/etc/edge-reconciler', '/etc/ufw']);
    // Every kind of step: an env file and a unit change, a timer goes, the firewall changes.
    await edge.commitAll(
      {
        'hosts/lod-prod.yaml': (text) => text.replace('workers: 4', 'workers: 7'),
        'roles/lod/templates/lod.service.hbs': (text) => text.replace('RestartSec=2', 'RestartSec=3'),
        'roles/lod/role.yaml': (text) =>
          text
            .replace(/ {2}- kind: systemd-unit\n {4}name: lod-backup\.timer\n {4}template: lod-backup\.timer\.hbs\n/, '')
            .replace('from: 100.64.0.10', 'from: 100.64.0.11'),
      },
      'lod: 7 workers, no backup timer, router moved',
    );

    const crashed = await edge.apply('lod-prod', { env: { EDGE_CRASH_AT: 'apply:op:2' } });
    assert.equal(crashed.exitCode, KILLED, `the agent was not killed: ${crashed.stderr}`);
    const journal = JSON.parse(await edge.box.readFile(`${AGENT.stateDir}/journal.json`)) as { generation: number; ops: unknown[] };
    assert.equal(journal.generation, 2);
    assert.ok(journal.ops.length > 3, 'the crash came in the middle of the ops');
    assert.notDeepEqual(await edge.snapshot(['/etc/systemd/system', '/etc/edge-reconciler', '/etc/ufw']), old, 'the crash left files half-applied');

    const recovered = await edge.recover();
    assert.equal(recovered.exitCode, 0, recovered.stderr);
    assert.match(recovered.stdout, /recovered generation 2: undone/);
    assert.deepEqual(await edge.generationMismatches(1), [], 'every managed file is the old generation\'s');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '4');
    for (const unit of ['lod.service', 'lod-backup.timer']) {
      assert.equal(await edge.box.unitState(unit), 'active', `after recover, ${unit} of the old generation runs\n${await edge.evidence([unit])}`);
      assert.equal(await edge.enabledState(unit), 'enabled', unit);
    }
    assert.equal(await edge.unitProperty('lod.service', 'RestartUSec'), '2s');
    assert.deepEqual(await edge.snapshot(['/etc/systemd/system', '/etc/edge-reconciler', '/etc/ufw']), old, 'exactly the old generation, enablement links included');

    const applied = await edge.applyOk();
    assert.equal(applied.generation, 3, 'the interrupted generation 2 is not reused');
    assert.deepEqual(await edge.generationMismatches(3), [], 'every managed file equals the new generation');
    assert.equal(await edge.box.unitState('lod.service'), 'active');
    assert.equal(await edge.unitProperty('lod.service', 'RestartUSec'), '3s');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '7');
    assert.equal(await edge.enabledState('lod-backup.timer'), 'not-found');
    assert.match(await edge.ufwStatus(), /8080\/tcp on tailscale0 +ALLOW IN +100\.64\.0\.11/);
    const history = JSON.parse((await edge.agent(['history', '--state-dir', AGENT.stateDir, '--json'])).stdout) as { generations: { generation: number; result: string }[] };
    assert.deepEqual(history.generations.map(({ generation, result }) => [generation, result]), [[3, 'good'], [2, 'interrupted'], [1, 'good']]);
  });
});
