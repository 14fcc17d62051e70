/**
 * The ufw renderer: rules as data and as ufw command lines, refused addresses and ports, the guard rails (first-match
 * simulation of ssh and management probes), and ufw's own parser over the staged files.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Guards, ResourceDecl } from '../../../reconciler/model.js';
import { guardRailProblems } from '../../../renderers/ufw/guard-rails.js';
import { ufwRenderer } from '../../../renderers/ufw/index.js';
import { ufwSyntaxProblems } from '../../../renderers/ufw/syntax.js';
import { placeholderSecrets, TemplateEngine } from '../../../renderers/template.js';
import { RenderProblems, type RenderedFile } from '../../../renderers/types.js';
import { testData, testHost } from '../../helpers/render-fixtures.js';

const HOST = testHost('edge-1', 'edge', { address: '100.64.0.10' });

const DATA = testData(HOST);

const GUARDS: Guards = { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' };
const MANAGEMENT = { action: 'allow', interface: 'tailscale0' };

function render(spec: Record<string, unknown>, name = 'base', index = 0): RenderedFile {
  const resource: ResourceDecl = {
    kind: 'ufw',
    name,
    role: 'edge',
    spec,
    source: { file: 'roles/edge/role.yaml', line: 3 + index, path: `/resources/${index}` },
  };
  const [file] = ufwRenderer.render({ resource, host: HOST, data: DATA, engine: new TemplateEngine(new Map(), placeholderSecrets) });
  assert.ok(file);
  return file;
}

function codes(files: RenderedFile[], guards: Guards = GUARDS): string[] {
  return guardRailProblems(files, guards).map((p) => p.code);
}

describe('ufw renderer', () => {
  it('writes one ufw command per line after a header, defaults first', () => {
    const file = render({
      defaults: { incoming: 'deny' },
      rules: [
        { ...MANAGEMENT, comment: 'management over tailscale' },
        { action: 'allow', proto: 'tcp', port: 443, comment: 'https' },
        { action: 'limit', interface: 'eth0', proto: 'tcp', from: '10.0.0.0/8', port: 22 },
        { action: 'deny', direction: 'out', proto: 'udp', to: '2001:db8::/32', port: '5000:5010' },
        { action: 'reject', from: 'any', to: 'any' },
        { action: 'allow', interface: 'eth1', proto: 'udp' },
      ],
    });
    assert.equal(file.path, '/etc/edge-reconciler/ufw/base.rules');
    assert.equal(file.mode, 0o644);
    assert.equal(file.content, [
      '# managed by edge-reconciler: edge/ufw/base',
      'default deny incoming',
      'default allow outgoing',
      'default deny routed',
      "allow in on tailscale0 comment 'management over tailscale'",
      "allow in proto tcp to any port 443 comment 'https'",
      'limit in on eth0 proto tcp from 10.0.0.0/8 to any port 22',
      'deny out proto udp to 2001:db8::/32 port 5000:5010',
      'reject in from any to any',
      'allow in on eth1 proto udp from any to any',
      '',
    ].join('\n'));
    assert.deepEqual(file.ufw?.defaults, { incoming: 'deny', outgoing: 'allow', routed: 'deny' });
    assert.equal(file.ufw?.rules.length, 6);
    assert.deepEqual(file.ufw?.rules[2]?.source, { file: 'roles/edge/role.yaml', line: 3, path: '/resources/0/rules/2' });
    assert.equal(file.ufw?.rules[4]?.from, undefined, '"any" is stored as absent');
  });

  it('leaves defaults out when the resource sets none', () => {
    const file = render({ rules: [MANAGEMENT] });
    assert.equal(file.ufw?.defaults, undefined);
    assert.equal(file.content, '# managed by edge-reconciler: edge/ufw/base\nallow in on tailscale0\n');
  });

  it('refuses bad addresses, reversed ranges, ranges without proto and mixed families', () => {
    assert.throws(
      () =>
        render({
          rules: [
            { action: 'allow', from: '10.0.0.256' },
            { action: 'allow', to: '2001:db8::/129' },
            { action: 'allow', proto: 'tcp', port: '10:5' },
            { action: 'allow', port: '10:20' },
            { action: 'allow', proto: 'tcp', port: '0' },
            { action: 'allow', from: '10.0.0.0/8', to: '::1' },
          ],
        }),
      (error: unknown) => {
        assert.ok(error instanceof RenderProblems);
        assert.deepEqual(error.problems.map((p) => [p.code, p.path]), [
          ['UFW_RULE_INVALID', '/resources/0/rules/0'],
          ['UFW_RULE_INVALID', '/resources/0/rules/1'],
          ['UFW_RULE_INVALID', '/resources/0/rules/2'],
          ['UFW_RULE_INVALID', '/resources/0/rules/3'],
          ['UFW_RULE_INVALID', '/resources/0/rules/4'],
          ['UFW_RULE_INVALID', '/resources/0/rules/5'],
        ]);
        return true;
      },
    );
  });
});

describe('ufw guard rails', () => {
  it('accepts management over tailscale0 with ssh elsewhere only from a private range', () => {
    const file = render({ rules: [MANAGEMENT, { action: 'limit', interface: 'eth0', proto: 'tcp', from: '10.0.0.0/8', port: 22 }] });
    assert.deepEqual(codes([file]), []);
  });

  it('refuses ssh from the world, unless guards.allowSshFromAnywhere', () => {
    const file = render({ rules: [MANAGEMENT, { action: 'allow', proto: 'tcp', port: 22 }] });
    const [problem] = guardRailProblems([file], GUARDS);
    assert.equal(problem?.code, 'UFW_SSH_WORLD');
    assert.equal(problem?.path, '/resources/0/rules/1');
    assert.match(problem?.message ?? '', /guards\.allowSshFromAnywhere/);
    assert.deepEqual(codes([file], { ...GUARDS, allowSshFromAnywhere: true }), []);
  });

  it('sees ssh opened only over IPv6, through a port range, or through an interface-less rule', () => {
    assert.deepEqual(codes([render({ rules: [MANAGEMENT, { action: 'allow', proto: 'tcp', from: '2001:db8::/32', port: 22 }] })]), ['UFW_SSH_WORLD']);
    assert.deepEqual(codes([render({ rules: [MANAGEMENT, { action: 'allow', port: '1:1000', proto: 'tcp' }] })]), ['UFW_SSH_WORLD']);
    assert.deepEqual(codes([render({ rules: [MANAGEMENT, { action: 'allow', from: 'any' }] })]), ['UFW_SSH_WORLD']);
    assert.deepEqual(codes([render({ rules: [MANAGEMENT, { action: 'allow', proto: 'udp', port: 22 }] })]), []);
  });

  it('lets the first matching rule win, per interface', () => {
    const denyFirst = render({ rules: [MANAGEMENT, { action: 'deny', proto: 'tcp', port: 22 }, { action: 'allow', proto: 'tcp', port: 22 }] });
    assert.deepEqual(codes([denyFirst]), []);
    const denyOnEth0Only = render({ rules: [MANAGEMENT, { action: 'deny', interface: 'eth0', proto: 'tcp', port: 22 }, { action: 'allow', proto: 'tcp', port: 22 }] });
    assert.deepEqual(codes([denyOnEth0Only]), ['UFW_SSH_WORLD']);
  });

  it('errs on the safe side for rules with a specific destination', () => {
    // an allow to a specific address may be the host's public address: the ssh rail assumes it matches
    assert.deepEqual(codes([render({ rules: [MANAGEMENT, { action: 'allow', proto: 'tcp', to: '198.51.100.1', port: 22 }] })]), ['UFW_SSH_WORLD']);
    // a deny to a specific address may miss the host's address: it does not protect against a later allow
    assert.deepEqual(
      codes([render({ rules: [MANAGEMENT, { action: 'deny', to: '198.51.100.1' }, { action: 'allow', proto: 'tcp', port: 22 }] })]),
      ['UFW_SSH_WORLD'],
    );
    // on tailscale0, an allow to a specific address may miss the host: management counts as cut
    assert.deepEqual(codes([render({ rules: [{ action: 'allow', interface: 'tailscale0', to: '100.64.0.10' }] })]), ['UFW_MANAGEMENT_CUT']);
    // and a deny to a specific address before the allow may hit it
    assert.deepEqual(
      codes([render({ rules: [{ action: 'deny', interface: 'tailscale0', to: '100.64.0.10' }, MANAGEMENT] })]),
      ['UFW_MANAGEMENT_CUT'],
    );
    // a specific IPv6 destination never matches an IPv4 probe
    assert.deepEqual(codes([render({ rules: [{ action: 'deny', interface: 'tailscale0', to: 'fd7a:115c:a1e0::1' }, MANAGEMENT] })]), []);
  });

  it('refuses a management cut by default policy or by rule, unless guards.allowManagementCut', () => {
    const byDefault = render({ rules: [{ action: 'allow', proto: 'tcp', port: 443 }] });
    assert.deepEqual(codes([byDefault]), ['UFW_MANAGEMENT_CUT']);
    assert.deepEqual(codes([byDefault], { ...GUARDS, allowManagementCut: true }), []);
    const byRule = render({ rules: [{ action: 'reject', interface: 'tailscale0', proto: 'tcp', port: 22 }, MANAGEMENT] });
    const [problem] = guardRailProblems([byRule], GUARDS);
    assert.equal(problem?.path, '/resources/0/rules/0');
    assert.match(problem?.message ?? '', /is rejected by rule "reject in on tailscale0 proto tcp to any port 22"/);
    const other = render({ rules: [{ action: 'allow', interface: 'wg0' }] });
    assert.deepEqual(codes([other], { ...GUARDS, managementInterface: 'wg0' }), []);
  });

  it('refuses default allow incoming, even with both overrides', () => {
    const file = render({ defaults: { incoming: 'allow' }, rules: [MANAGEMENT] });
    assert.deepEqual(codes([file], { ...GUARDS, allowSshFromAnywhere: true, allowManagementCut: true }), ['UFW_DEFAULT_ALLOW']);
  });

  it('evaluates the union of files in path order and refuses conflicting defaults', () => {
    const base = render({ defaults: { incoming: 'deny' }, rules: [MANAGEMENT] }, '10-base', 0);
    const same = render({ defaults: { incoming: 'deny', outgoing: 'allow', routed: 'deny' }, rules: [] }, '15-same', 1);
    const app = render({ defaults: { incoming: 'reject' }, rules: [{ action: 'allow', proto: 'tcp', port: 22 }] }, '20-app', 2);
    assert.deepEqual(codes([app, same, base]), ['UFW_DEFAULTS_CONFLICT', 'UFW_SSH_WORLD']);
    const management = render({ rules: [MANAGEMENT] }, '05-management', 0);
    const deny = render({ rules: [{ action: 'deny', proto: 'tcp', port: 22 }] }, '10-deny', 1);
    const allowLate = render({ rules: [{ action: 'allow', proto: 'tcp', port: 22 }] }, '20-app', 2);
    const allowEarly = render({ rules: [{ action: 'allow', proto: 'tcp', port: 22 }] }, '07-app', 2);
    assert.deepEqual(codes([allowLate, deny, management]), [], 'the deny in 10- comes before the allow in 20-');
    assert.deepEqual(codes([deny, allowEarly, management]), ['UFW_SSH_WORLD'], 'the allow in 07- comes first');
    assert.deepEqual(codes([allowLate, deny]), ['UFW_MANAGEMENT_CUT'], 'without 05-management the deny cuts tailscale0');
  });
});

describe('ufw syntax check (ufw\'s own parser)', () => {
  let stagingDir: string;

  before(async () => {
    stagingDir = await mkdtemp(join(tmpdir(), 'edge-ufw-test-'));
  });

  after(async () => {
    await rm(stagingDir, { recursive: true, force: true });
  });

  async function stage(files: RenderedFile[]): Promise<void> {
    for (const file of files) {
      await mkdir(dirname(join(stagingDir, file.path)), { recursive: true });
      await writeFile(join(stagingDir, file.path), file.content);
    }
  }

  it('accepts every form the renderer emits', async () => {
    const file = render({
      defaults: { incoming: 'reject', outgoing: 'deny', routed: 'allow' },
      rules: [
        { ...MANAGEMENT, comment: 'management (tailscale) & more' },
        { action: 'allow', proto: 'tcp', port: 443 },
        { action: 'limit', interface: 'eth0', proto: 'tcp', from: '10.0.0.0/8', port: 22 },
        { action: 'deny', direction: 'out', interface: 'eth0', proto: 'udp', to: '2001:db8::/32', port: '5000:5010' },
        { action: 'reject', from: '203.0.113.0/24' },
        { action: 'allow', to: '192.0.2.1' },
        { action: 'allow', interface: 'eth1', proto: 'udp' },
        { action: 'allow', proto: 'tcp' },
        { action: 'allow', direction: 'out' },
        { action: 'allow', from: '10.1.0.0/16', to: '10.2.0.0/16', port: 8080 },
      ],
    });
    await stage([file]);
    assert.deepEqual(await ufwSyntaxProblems({ files: [file], allFiles: [file], stagingDir, guards: GUARDS, externalExecPrefixes: [] }), []);
  });

  it('reports a line ufw refuses with the target path and line', async () => {
    const file = render({ rules: [MANAGEMENT] });
    const broken = { ...file, path: '/etc/edge-reconciler/ufw/broken.rules', content: `${file.content}allow in proto tcp\nfrobnicate\nallow in to any port 1:5\n` };
    await stage([broken]);
    const problems = await ufwSyntaxProblems({ files: [broken], allFiles: [broken], stagingDir, guards: GUARDS, externalExecPrefixes: [] });
    assert.deepEqual(problems.map((p) => [p.code, p.message]), [
      ['UFW_SYNTAX', `/etc/edge-reconciler/ufw/broken.rules line 3: ufw refuses "allow in proto tcp": need 'to' or 'from' clause`],
      ['UFW_SYNTAX', `/etc/edge-reconciler/ufw/broken.rules line 4: ufw refuses "frobnicate": invalid syntax`],
    ]);
  });

  it('reports VALIDATOR_MISSING when ufw is not installed', async () => {
    const file = render({ rules: [MANAGEMENT] });
    const problems = await ufwSyntaxProblems(
      { files: [file], allFiles: [file], stagingDir, guards: GUARDS, externalExecPrefixes: [] },
      ['/nonexistent/ufw'],
    );
    assert.equal(problems[0]?.code, 'VALIDATOR_MISSING');
  });
});
