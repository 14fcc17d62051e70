/**
 * UFW applied for real in the container's own network namespace: the rules of lod-prod and new default policies
 * reach ufw and iptables, the dead-man switch is disarmed after a healthy apply, a rule set that would cut
 * management over tailscale0 is refused, so is the first firewall of a host without tailscale0 (the lockout guard
 * reads the live interfaces), and an agent killed after loading new rules gets the previous rules back from the
 * dead-man switch.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { waitUntil } from '../helpers/wait.js';
import { EdgeHost, KILLED } from '../helpers/e2e-host.js';

const DEADMAN = 'edge-reconciler-ufw-deadman';
const LOD_FROM_ROUTER = /^-A ufw-user-input -s 100\.64\.0\.10\/32 -i tailscale0 -p tcp -m tcp --dport 8080 -j ACCEPT$/m;
const LOD_FROM_ELSEWHERE = /^-A ufw-user-input -s 100\.64\.0\.11\/32 -i tailscale0 -p tcp -m tcp --dport 8080 -j ACCEPT$/m;

describe('e2e apply: the firewall on a real ufw', function () {
  this.timeout(300_000);
  let edge: EdgeHost;

  beforeEach(async function () {
    this.timeout(15 * 60_000);
    edge = await EdgeHost.boot();
  });
  afterEach(async () => edge?.shutdown());

  it('loads the rules into ufw and iptables, disarms the dead-man switch, and refuses a rule set that cuts tailscale0', async () => {
    await edge.applyOk();
    const status = await edge.ufwStatus();
    assert.match(status, /^Status: active$/m);
    // ufw says "disabled (routed)" while IP forwarding is off, which the container cannot change (/proc/sys is read-only).
    assert.match(status, /^Default: deny \(incoming\), allow \(outgoing\), (deny|disabled) \(routed\)$/m);
    assert.match(await edge.box.readFile('/etc/default/ufw'), /^DEFAULT_FORWARD_POLICY="DROP"$/m);
    assert.match(status, /^22\/tcp on tailscale0 +LIMIT IN +Anywhere +# ssh over tailscale only$/m);
    assert.match(status, /^8080\/tcp on tailscale0 +ALLOW IN +100\.64\.0\.10 +# lod from the router$/m);
    assert.match(status, /^9100\/tcp on tailscale0 +ALLOW IN +100\.64\.0\.0\/10 +# metrics from the mesh$/m);

    const rules = (await edge.userIptables()).join('\n');
    assert.match(rules, /^-A ufw-user-input -i tailscale0 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name DEFAULT/m);
    assert.match(rules, /^-A ufw-user-input -i tailscale0 -p tcp -m tcp --dport 22 -j ufw-user-limit-accept$/m);
    assert.match(rules, LOD_FROM_ROUTER);
    assert.match(rules, /^-A ufw-user-input -s 100\.64\.0\.0\/10 -i tailscale0 -p tcp -m tcp --dport 9100 -j ACCEPT$/m);
    assert.match((await edge.box.exec(['iptables', '-S', 'INPUT'])).stdout, /^-P INPUT DROP$/m);

    assert.equal(await edge.box.unitState(`${DEADMAN}.timer`), 'inactive', 'the dead-man switch is not left armed');
    assert.doesNotMatch((await edge.box.exec(['systemctl', 'list-timers', '--all', '--no-pager'])).stdout, new RegExp(DEADMAN));

    const before = { status, rules, files: await edge.snapshot(['/etc/ufw', '/etc/default/ufw', '/etc/edge-reconciler/ufw']) };
    await edge.commit('roles/firewall/role.yaml', (text) => text.replace('      - action: limit\n', '      - action: deny\n'));
    const cut = await edge.apply();
    assert.equal(cut.exitCode, 1);
    assert.equal(cut.json?.result, 'invalid');
    assert.equal(cut.json?.error?.code, 'UFW_MANAGEMENT_CUT', JSON.stringify(cut.json?.error));
    assert.match(cut.json?.error?.message ?? '', /tailscale0/);
    assert.deepEqual(cut.json?.commands, []);
    assert.equal(await edge.ufwStatus(), before.status, 'ufw is unchanged');
    assert.equal((await edge.userIptables()).join('\n'), before.rules, 'iptables is unchanged');
    assert.deepEqual(await edge.snapshot(['/etc/ufw', '/etc/default/ufw', '/etc/edge-reconciler/ufw']), before.files);
  });

  it('refuses the first firewall on a host without tailscale0 (UFW_MANAGEMENT_MISSING), changing nothing', async () => {
    await execa('nsenter', ['-t', String(edge.box.initPid), '-n', '--', 'ip', 'link', 'del', 'tailscale0']);
    const live = ['/etc/ufw', '/etc/default/ufw', '/etc/edge-reconciler', '/etc/systemd/system', '/etc/caddy'];
    const before = { status: await edge.ufwStatus(), files: await edge.snapshot(live) };
    const refused = await edge.apply();
    assert.equal(refused.exitCode, 1, refused.stderr);
    assert.equal(refused.json?.result, 'invalid');
    assert.equal(refused.json?.error?.code, 'UFW_MANAGEMENT_MISSING', JSON.stringify(refused.json?.error));
    assert.match(refused.json?.error?.message ?? '', /roles\/firewall\/role\.yaml.*\/sys\/class\/net\/tailscale0/);
    assert.deepEqual(refused.json?.commands, []);
    assert.equal(await edge.ufwStatus(), before.status, 'ufw is unchanged');
    assert.deepEqual(await edge.snapshot(live), before.files);
  });

  it('loads changed default policies into the running firewall, keeping the rules', async () => {
    await edge.applyOk();
    assert.match((await edge.box.exec(['iptables', '-S', 'OUTPUT'])).stdout, /^-P OUTPUT ACCEPT$/m);
    await edge.commit('roles/firewall/role.yaml', (text) => text.replace('      outgoing: allow\n', '      outgoing: deny\n'));
    await edge.applyOk();
    assert.match((await edge.box.exec(['iptables', '-S', 'OUTPUT'])).stdout, /^-P OUTPUT DROP$/m);
    assert.match(await edge.ufwStatus(), /^Default: deny \(incoming\), deny \(outgoing\), /m);
    assert.match((await edge.userIptables()).join('\n'), LOD_FROM_ROUTER);
    assert.deepEqual(await edge.box.httpGet('http://127.0.0.1:8080/healthz'), { status: 200, body: 'ok' });
  });

  it('puts the previous rules back when the agent dies after loading new ones, and the next apply converges', async () => {
    await edge.applyOk();
    const previous = { status: await edge.ufwStatus(), files: await edge.snapshot(['/etc/ufw', '/etc/default/ufw']) };
    await edge.commit('roles/lod/role.yaml', (text) => text.replace('from: 100.64.0.10', 'from: 100.64.0.11'));

    const crashed = await edge.apply('lod-prod', { args: ['--deadman-seconds', '5'], env: { EDGE_CRASH_AT: 'activate:firewall' } });
    const killedAt = Date.now();
    assert.equal(crashed.exitCode, KILLED, `the agent was not killed: ${crashed.stderr}`);
    const loaded = (await edge.userIptables()).join('\n');
    const armed = await edge.box.unitState(`${DEADMAN}.timer`);
    assert.match(loaded, LOD_FROM_ELSEWHERE, `the new rules were loaded before the kill (dead-man timer: ${armed})`);
    assert.equal(armed, 'active', 'the dead-man switch is armed');

    // The transient service is unloaded once it finished: its journal is the evidence that it ran to the end.
    const restore = await waitUntil(
      async () => {
        const journal = await edge.box.journal(`${DEADMAN}.service`, 20);
        return /ufw-deadman\.service: Deactivated successfully/.test(journal) ? journal : '';
      },
      { timeoutMs: 150_000, intervalMs: 250, what: 'the dead-man switch to restore the previous rules' },
    );
    const restoredAfter = Date.now() - killedAt;
    assert.match(restore, /Firewall reloaded/);
    const rules = (await edge.userIptables()).join('\n');
    assert.match(rules, LOD_FROM_ROUTER, `restored ${restoredAfter} ms after the kill`);
    assert.doesNotMatch(rules, LOD_FROM_ELSEWHERE);
    assert.equal(await edge.ufwStatus(), previous.status);
    assert.deepEqual(await edge.snapshot(['/etc/ufw', '/etc/default/ufw']), previous.files, 'ufw\'s own files are the previous ones');
    await sleep(500);
    assert.match((await edge.userIptables()).join('\n'), LOD_FROM_ROUTER, 'the restored rules stay');

    const next = await edge.apply();
    assert.equal(next.exitCode, 0, `${next.json?.error?.message}\n${next.stderr}`);
    assert.equal(next.json?.recovery?.outcome, 'undone');
    assert.equal(next.json?.result, 'applied');
    assert.match((await edge.userIptables()).join('\n'), LOD_FROM_ELSEWHERE);
    assert.equal(await edge.box.unitState(`${DEADMAN}.timer`), 'inactive');
    assert.deepEqual(await edge.generationMismatches(next.json?.generation ?? -1), []);
  });
});
