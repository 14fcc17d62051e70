/**
 * The lockout guard against the live host: established SSH sessions the new rules would refuse, and SSH allowed
 * only over a management interface the host does not have; and the /proc/net/tcp reader behind the sessions.
 */
import assert from 'node:assert/strict';
import { parseProcNetTcp } from '../../../reconciler/host/network-facts.js';
import type { Guards, ResourceDecl } from '../../../reconciler/model.js';
import { lockoutProblems } from '../../../renderers/ufw/lockout.js';
import { ufwRenderer } from '../../../renderers/ufw/index.js';
import { placeholderSecrets, TemplateEngine } from '../../../renderers/template.js';
import type { RenderedFile } from '../../../renderers/types.js';
import { testData, testHost } from '../../helpers/render-fixtures.js';

const HOST = testHost('edge-1', 'edge');
const GUARDS: Guards = { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' };
const TAILSCALE_ONLY = [{ action: 'limit', interface: 'tailscale0', port: 22, proto: 'tcp' }];

function render(rules: Record<string, unknown>[]): RenderedFile[] {
  const resource: ResourceDecl = { kind: 'ufw', name: 'base', role: 'edge', spec: { defaults: { incoming: 'deny' }, rules }, source: { file: 'roles/edge/role.yaml', line: 3, path: '/resources/0' } };
  return ufwRenderer.render({ resource, host: HOST, data: testData(HOST), engine: new TemplateEngine(new Map(), placeholderSecrets) });
}

describe('ufw lockout guard', () => {
  it('refuses rules that would refuse an ssh session established now, naming the client and interface', () => {
    const problems = lockoutProblems(render(TAILSCALE_ONLY), GUARDS, {
      sessions: [{ local: '192.0.2.10', peer: '203.0.113.9', interface: 'eth0' }, { local: '100.64.0.10', peer: '100.100.3.4', interface: 'tailscale0' }],
    });
    assert.deepEqual(problems.map((p) => [p.code, p.file, p.line]), [['UFW_LOCKOUT_SSH', 'roles/edge/role.yaml', 3]]);
    assert.match(problems[0]?.message ?? '', /^ssh from 203\.0\.113\.9 on eth0 is connected to this host now, and the new rules would refuse it \(the default incoming policy "deny"\): .*guards\.allowHostLockout: true/);
  });

  it('refuses ssh only over a management interface the host does not have', () => {
    const problems = lockoutProblems(render(TAILSCALE_ONLY), GUARDS, { interfaces: ['lo', 'eth0'] });
    assert.deepEqual(problems.map((p) => p.code), ['UFW_MANAGEMENT_MISSING']);
    assert.match(problems[0]?.message ?? '', /only over tailscale0, which this host does not have \(no \/sys\/class\/net\/tailscale0; it has eth0\)/);
  });

  it('accepts the rules when the session and the interface are fine, when ssh is open on another interface, or when lifted', () => {
    assert.deepEqual(lockoutProblems(render(TAILSCALE_ONLY), GUARDS, { interfaces: ['lo', 'eth0', 'tailscale0'], sessions: [{ local: '100.64.0.10', peer: '100.100.3.4', interface: 'tailscale0' }] }), []);
    const bastion = render([...TAILSCALE_ONLY, { action: 'allow', interface: 'eth0', port: 22, proto: 'tcp', from: '203.0.113.0/24' }]);
    assert.deepEqual(lockoutProblems(bastion, GUARDS, { interfaces: ['lo', 'eth0'], sessions: [{ local: '192.0.2.10', peer: '203.0.113.9', interface: 'eth0' }] }), []);
    assert.deepEqual(lockoutProblems(render(TAILSCALE_ONLY), { ...GUARDS, allowHostLockout: true }, { interfaces: ['lo', 'eth0'], sessions: [{ local: '192.0.2.10', peer: '203.0.113.9', interface: 'eth0' }] }), []);
    assert.deepEqual(lockoutProblems(render(TAILSCALE_ONLY), GUARDS, {}), [], 'unknown facts are not judged');
  });

  it('reads established connections from /proc/net/tcp and tcp6, IPv4-mapped addresses as IPv4', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0A02000A:0016 097100CB:D431 01 00000000:00000000 02:000A7B9E 00000000     0        0 1234 2 0000000000000000 20 4 1 10 -1',
      '   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 100 0 0 10 0',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp), [
      { local: '10.0.2.10', localPort: 22, peer: '203.0.113.9', peerPort: 54321, state: 1 },
      { local: '0.0.0.0', localPort: 22, peer: '0.0.0.0', peerPort: 0, state: 10 },
    ]);
    const tcp6 = [
      '  sl  local_address                         remote_address                        st',
      '   0: 0000000000000000FFFF00000A02000A:0016 0000000000000000FFFF0000097100CB:D431 01 00000000:00000000',
      '   1: B80D0120000000000000000001000000:0016 B80D0120000000000000000007000000:C350 01 00000000:00000000',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp6), [
      { local: '10.0.2.10', localPort: 22, peer: '203.0.113.9', peerPort: 54321, state: 1 },
      { local: '2001:db8::1', localPort: 22, peer: '2001:db8::7', peerPort: 50000, state: 1 },
    ]);
  });
});
