/**
 * `check` against copies of the example repo broken in one way each: every break gives its own error code and a
 * message that names the file, and nothing else about the repo is reported as broken.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { copyExampleRepo, runCli, writeSecretsDir, EXAMPLE_SECRETS } from '../helpers/cli.js';
import { EXAMPLE_REPO } from '../helpers/paths.js';

type Mutation = (repo: string) => Promise<void>;

async function edit(repo: string, file: string, change: (text: string) => string): Promise<void> {
  const path = join(repo, file);
  const before = await readFile(path, 'utf8');
  const after = change(before);
  assert.notEqual(after, before, `the mutation of ${file} changed nothing`);
  await writeFile(path, after);
}

async function editYaml(repo: string, file: string, change: (value: Record<string, unknown>) => void): Promise<void> {
  await edit(repo, file, (text) => {
    const value = parse(text) as Record<string, unknown>;
    change(value);
    return stringify(value);
  });
}

function addResource(role: string, resource: Record<string, unknown>): Mutation {
  return (repo) =>
    editYaml(repo, `roles/${role}/role.yaml`, (value) => {
      (value.resources as unknown[]).push(resource);
    });
}

function addUfwRule(rule: Record<string, unknown>): Mutation {
  return (repo) =>
    editYaml(repo, 'roles/firewall/role.yaml', (value) => {
      const [ufw] = value.resources as { rules: unknown[] }[];
      ufw?.rules.push(rule);
    });
}

interface BadInput {
  what: string;
  code: string;
  /** The file the message must name. */
  names: string;
  mutate: Mutation;
  withSecrets?: boolean;
}

const PRIVATE_KEY = ['-----BEGIN OPENSSH', 'PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n'].join(' ');
const GITHUB_TOKEN = `ghp_${'a1B2c3D4e5'.repeat(3)}123456`;

const BAD_INPUTS: BadInput[] = [
  { what: 'broken yaml', code: 'YAML_SYNTAX', names: 'hosts/lod-prod.yaml', mutate: (r) => edit(r, 'hosts/lod-prod.yaml', (t) => t.replace('roles: [base, firewall, lod]', 'roles: [base, firewall, lod')) },
  { what: 'a duplicate yaml key', code: 'YAML_SYNTAX', names: 'hosts/model-gateway.yaml', mutate: (r) => edit(r, 'hosts/model-gateway.yaml', (t) => `${t}address: 100.64.0.31\n`) },
  { what: 'an unknown field in a role', code: 'SCHEMA', names: 'roles/lod/role.yaml', mutate: (r) => edit(r, 'roles/lod/role.yaml', (t) => t.replace('  - kind: env-file\n    name: lod\n', '  - kind: env-file\n    name: lod\n    colour: blue\n')) },
  { what: 'a host without an address', code: 'SCHEMA', names: 'hosts/lod-standby.yaml', mutate: (r) => edit(r, 'hosts/lod-standby.yaml', (t) => t.replace('address: 100.64.0.22\n', '')) },
  { what: 'an unknown resource kind', code: 'SCHEMA', names: 'roles/base/role.yaml', mutate: addResource('base', { kind: 'docker', name: 'x' }) },
  { what: 'a missing edge.yaml', code: 'EDGE_MISSING', names: 'edge.yaml', mutate: (r) => unlink(join(r, 'edge.yaml')) },
  { what: 'a host using a role that does not exist', code: 'ROLE_UNKNOWN', names: 'hosts/caddy-router.yaml', mutate: (r) => edit(r, 'hosts/caddy-router.yaml', (t) => t.replace('[base, firewall, router]', '[base, firewall, routr]')) },
  { what: 'a wave naming a host that does not exist', code: 'WAVE_HOST_UNKNOWN', names: 'edge.yaml', mutate: (r) => edit(r, 'edge.yaml', (t) => t.replace('[lod-prod]', '[lod-prdo]')) },
  { what: 'a host in two waves', code: 'WAVE_HOST_TWICE', names: 'edge.yaml', mutate: (r) => edit(r, 'edge.yaml', (t) => t.replace('[caddy-router]', '[caddy-router, lod-prod]')) },
  { what: 'a host file with a bad name', code: 'HOST_NAME', names: 'hosts/Lod_Prod.yaml', mutate: async (r) => writeFile(join(r, 'hosts/Lod_Prod.yaml'), 'address: 100.64.0.40\nroles: [base]\n') },
  { what: 'a resource declared twice', code: 'RESOURCE_DUPLICATE', names: 'roles/lod/role.yaml', mutate: addResource('lod', { kind: 'env-file', name: 'lod', template: 'lod.env.hbs' }) },
  { what: 'a hook file that is not in the repo', code: 'HOOK_MISSING', names: 'roles/lod/role.yaml', mutate: (r) => editYaml(r, 'roles/lod/role.yaml', (v) => { v.hooks = { 'pre-apply': 'hooks/migrate.sh' }; }) },
  { what: 'a hook in object form whose file is not in the repo', code: 'HOOK_MISSING', names: 'roles/lod/role.yaml', mutate: (r) => editYaml(r, 'roles/lod/role.yaml', (v) => { v.hooks = { 'post-apply': { script: 'hooks/notify.sh', network: true } }; }) },
  { what: 'a hook that asks to run as root', code: 'SCHEMA', names: 'roles/lod/role.yaml', mutate: (r) => editYaml(r, 'roles/lod/role.yaml', (v) => { v.hooks = { 'pre-apply': { script: 'hooks/migrate.sh', user: 'root' } }; }) },
  { what: 'a hook without a script', code: 'SCHEMA', names: 'roles/lod/role.yaml', mutate: (r) => editYaml(r, 'roles/lod/role.yaml', (v) => { v.hooks = { 'pre-apply': { network: true } }; }) },
  { what: 'a hook whose network is not a boolean', code: 'SCHEMA', names: 'roles/lod/role.yaml', mutate: (r) => editYaml(r, 'roles/lod/role.yaml', (v) => { v.hooks = { 'pre-apply': { script: 'hooks/migrate.sh', network: 'yes' } }; }) },
  { what: 'a template file that does not exist', code: 'TEMPLATE_MISSING', names: 'roles/lod/role.yaml', mutate: (r) => edit(r, 'roles/lod/role.yaml', (t) => t.replace('template: lod.service.hbs', 'template: lod.servic.hbs')) },
  { what: 'an unknown template variable', code: 'TEMPLATE_UNKNOWN_VARIABLE', names: 'roles/lod/templates/lod.service.hbs', mutate: (r) => edit(r, 'roles/lod/templates/lod.service.hbs', (t) => t.replace('RestartSec=2', 'RestartSec={{vars.lod.restartDelay}}')) },
  { what: 'a template syntax error', code: 'TEMPLATE_SYNTAX', names: 'roles/base/templates/journald.conf.hbs', mutate: (r) => edit(r, 'roles/base/templates/journald.conf.hbs', (t) => t.replace('{{vars.journal.maxUse}}', '{{#if vars.journal}}{{vars.journal.maxUse}}')) },
  { what: 'a secret the host does not have', code: 'SECRET_MISSING', names: 'roles/lod/templates/lod.env.hbs', withSecrets: true, mutate: (r) => edit(r, 'roles/lod/templates/lod.env.hbs', (t) => `${t}REDIS_PASSWORD={{secret "LOD_REDIS_PASSWORD"}}\n`) },
  { what: 'a secret used outside an env file', code: 'SECRET_NOT_ALLOWED', names: 'roles/router/templates/Caddyfile.hbs', mutate: (r) => edit(r, 'roles/router/templates/Caddyfile.hbs', (t) => t.replace('email {{vars.acmeEmail}}', 'email {{secret "ACME_EMAIL"}}')) },
  { what: 'a committed private key', code: 'SECRET_PRIVATE_KEY', names: 'roles/lod/templates/deploy_key', mutate: (r) => writeFile(join(r, 'roles/lod/templates/deploy_key'), PRIVATE_KEY) },
  { what: 'a committed forge token', code: 'SECRET_TOKEN', names: 'hosts/lod-prod.yaml', mutate: (r) => edit(r, 'hosts/lod-prod.yaml', (t) => `${t}# token: ${GITHUB_TOKEN}\n`) },
  { what: 'a literal value for a secret-named variable', code: 'SECRET_LITERAL', names: 'roles/model-gateway/templates/model-gateway.env.hbs', mutate: (r) => edit(r, 'roles/model-gateway/templates/model-gateway.env.hbs', (t) => t.replace('{{secret "MODEL_GATEWAY_API_KEY"}}', 'sk-live-1234567890')) },
  { what: 'a target with ..', code: 'PATH_TRAVERSAL', names: 'roles/base/role.yaml', mutate: addResource('base', { kind: 'file', name: 'escape', target: '/etc/logrotate.d/../shadow', content: 'x\n' }) },
  { what: 'a target outside the allowed roots', code: 'PATH_OUTSIDE_ROOTS', names: 'roles/base/role.yaml', mutate: addResource('base', { kind: 'file', name: 'sudoers', target: '/etc/sudoers.d/edge', content: 'ALL ALL=(ALL) NOPASSWD: ALL\n' }) },
  { what: 'a template symlink that leaves the repo', code: 'PATH_SYMLINK_ESCAPE', names: 'roles/base/templates/passwd.hbs', mutate: (r) => symlink('/etc/passwd', join(r, 'roles/base/templates/passwd.hbs')) },
  { what: 'two resources writing one file', code: 'TARGET_CONFLICT', names: 'roles/base/role.yaml', mutate: addResource('base', { kind: 'file', name: 'journald-again', target: '/etc/systemd/journald.conf.d/50-edge.conf', content: '[Journal]\n' }) },
  { what: 'an invalid Caddyfile', code: 'CADDY_INVALID', names: 'roles/router/templates/routes.caddy.hbs', mutate: (r) => edit(r, 'roles/router/templates/routes.caddy.hbs', (t) => t.replace('encode zstd gzip', 'encode_everything zstd')) },
  { what: 'an unknown unit key', code: 'UNIT_INVALID', names: 'roles/lod/templates/lod.service.hbs', mutate: (r) => edit(r, 'roles/lod/templates/lod.service.hbs', (t) => t.replace('Restart=on-failure', 'Restart=on-failure\nRestartForever=yes')) },
  { what: 'a unit whose command does not exist', code: 'UNIT_EXEC_MISSING', names: 'roles/lod/templates/lod-backup.service.hbs', mutate: (r) => edit(r, 'roles/lod/templates/lod-backup.service.hbs', (t) => t.replace('ExecStart=/bin/sh', 'ExecStart=/usr/local/bin/backup-tool')) },
  { what: 'SSH open to the world', code: 'UFW_SSH_WORLD', names: 'roles/firewall/role.yaml', mutate: addUfwRule({ action: 'allow', port: 22, proto: 'tcp', comment: 'oops' }) },
  { what: 'a rule set that cuts management over tailscale0', code: 'UFW_MANAGEMENT_CUT', names: 'roles/firewall/role.yaml', mutate: (r) => edit(r, 'roles/firewall/role.yaml', (t) => t.replace('      - action: limit\n        interface: tailscale0', '      - action: deny\n        interface: tailscale0\n      - action: limit\n        interface: tailscale0')) },
  { what: 'default allow incoming', code: 'UFW_DEFAULT_ALLOW', names: 'roles/firewall/role.yaml', mutate: (r) => edit(r, 'roles/firewall/role.yaml', (t) => t.replace('incoming: deny', 'incoming: allow')) },
  { what: 'a config file its own validator rejects', code: 'FILE_VALIDATE', names: 'roles/base/templates/logrotate-apps.hbs', mutate: (r) => edit(r, 'roles/base/templates/logrotate-apps.hbs', (t) => t.replace('rotate {{vars.logs.keepDays}}', 'rotate often')) },
  { what: 'an env file with a bad line', code: 'ENV_SYNTAX', names: 'roles/lod/templates/lod.env.hbs', mutate: (r) => edit(r, 'roles/lod/templates/lod.env.hbs', (t) => `${t}this is not an assignment\n`) },
  { what: 'a unit smuggled in as a generic file', code: 'PATH_KIND_OWNED', names: 'roles/base/role.yaml', mutate: addResource('base', { kind: 'file', name: 'sneaky', target: '/etc/systemd/system/sneaky.service', content: '[Service]\nExecStart=/bin/true\n' }) },
  { what: 'a world-writable file', code: 'FILE_MODE_UNSAFE', names: 'roles/base/role.yaml', mutate: addResource('base', { kind: 'file', name: 'open', target: '/etc/logrotate.d/open', content: '/var/log/x.log {\n  daily\n}\n', mode: '0666' }) },
  { what: 'a host var that adds a line to an env file', code: 'TEMPLATE_VALUE_CONTROL', names: 'roles/lod/templates/lod.env.hbs', mutate: (r) => edit(r, 'hosts/lod-prod.yaml', (t) => t.replace('workers: 4', 'workers: "4\\nLD_PRELOAD=/tmp/evil.so"')) },
  { what: 'a caddy import of the host secrets dir', code: 'CADDY_IMPORT_OUTSIDE', names: 'roles/router/templates/Caddyfile.hbs', mutate: (r) => edit(r, 'roles/router/templates/Caddyfile.hbs', (t) => t.replace('import /etc/caddy/sites/*.caddy', 'import /etc/caddy/sites/*.caddy\nimport /etc/edge-reconciler/secrets/*')) },
  { what: 'a yaml alias bomb', code: 'YAML_ALIAS_LIMIT', names: 'hosts/lod-prod.yaml', mutate: (r) => edit(r, 'hosts/lod-prod.yaml', (t) => `${t}bomb:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`) },
  { what: 'yaml nested too deep', code: 'YAML_TOO_DEEP', names: 'roles/base/role.yaml', mutate: (r) => edit(r, 'roles/base/role.yaml', (t) => `${t}x:\n  ${'- '.repeat(5000)}1\n`) },
  { what: 'a unit template that is not UTF-8', code: 'FILE_ENCODING', names: 'roles/lod/templates/lod.service.hbs', mutate: async (r) => writeFile(join(r, 'roles/lod/templates/lod.service.hbs'), Buffer.concat([await readFile(join(r, 'roles/lod/templates/lod.service.hbs')), Buffer.from([0xff, 0xfe, 0x0a])])) },
  { what: 'a private key inside a large binary file', code: 'SECRET_PRIVATE_KEY', names: 'roles/lod/files/blob.bin', mutate: async (r) => { await mkdir(join(r, 'roles/lod/files'), { recursive: true }); await writeFile(join(r, 'roles/lod/files/blob.bin'), Buffer.concat([Buffer.alloc(2 * 1024 * 1024, 0), Buffer.from(PRIVATE_KEY)])); } },
];

describe('check: each way to break the example repo gives its own error', function () {
  this.timeout(180_000);
  const repos: string[] = [];
  let secretsDir: string;

  before(async () => {
    secretsDir = await writeSecretsDir();
  });

  after(async () => {
    await Promise.all([...repos, secretsDir].map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('passes on the unbroken example repo', async () => {
    const result = await runCli(['check', '--repo', EXAMPLE_REPO, '--secrets-dir', secretsDir]);
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /all 4 hosts pass/);
  });

  it('covers at least 20 distinct error codes', () => {
    assert.ok(new Set(BAD_INPUTS.map((input) => input.code)).size >= 20);
  });

  for (const input of BAD_INPUTS) {
    it(`refuses ${input.what} with ${input.code}, naming ${input.names}`, async () => {
      const repo = await copyExampleRepo();
      repos.push(repo);
      await input.mutate(repo);
      const args = ['check', '--repo', repo, ...(input.withSecrets ? ['--secrets-dir', secretsDir] : [])];
      const result = await runCli(args);
      const output = result.stdout + result.stderr;
      assert.equal(result.exitCode, 1, output);
      const lines = output.split('\n').filter((line) => line.includes(`[${input.code}]`));
      assert.ok(lines.length > 0, `no ${input.code} in:\n${output}`);
      assert.ok(lines.some((line) => line.includes(input.names)), `no ${input.code} line names ${input.names}:\n${output}`);
      for (const value of Object.values(EXAMPLE_SECRETS)) assert.ok(!output.includes(value), 'a secret value leaked');
    });
  }

  it('refuses a secrets dir whose files others may read, naming the file', async () => {
    const dir = await writeSecretsDir();
    repos.push(dir);
    await chmod(join(dir, 'LOD_DB_PASSWORD'), 0o644);
    const result = await runCli(['check', '--repo', EXAMPLE_REPO, '--secrets-dir', dir]);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /LOD_DB_PASSWORD.*\[SECRET_PERMISSIONS\]/);
  });
});
