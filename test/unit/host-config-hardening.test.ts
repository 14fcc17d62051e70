/**
 * The host config refuses, when it loads, every value that would reach git as an option or a transport, a ref or
 * tag pattern git would not take, every spelling of a wildcard listen address, and credential files or dirs that
 * another user owns or can read: each problem names the key, and a URL's password never shows in one.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgeError, formatProblem } from '../../reconciler/errors.js';
import { parseHostConfig } from '../../reconciler/config/host-config.js';
import { fullRefName, parseRepo } from '../../reconciler/config/git-names.js';
import { scrub } from '../../reconciler/source/git-errors.js';
import { removeScratchDirs, scratchDir } from '../helpers/scratch.js';

const FILE = '/etc/edge-reconciler/config.yaml';
const HOST = 'host: lod-prod\n';
const REPO = 'repo: /srv/git/desired.git\n';

async function problemsOf(text: string): Promise<string[]> {
  try {
    await parseHostConfig(FILE, text);
  } catch (error) {
    assert.ok(error instanceof EdgeError, String(error));
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.problems.map(formatProblem);
  }
  assert.fail(`the config loaded:\n${text}`);
}

const yamlString = (value: string) => JSON.stringify(value);

/** Repos that must never reach git: options, remote helpers, other transports, relative paths, odd hosts. */
const BAD_REPOS = [
  '--exec=touch /tmp/pwned', '--upload-pack=touch /tmp/pwned', '-u touch /tmp/pwned', '--config=core.sshCommand=sh', '-',
  '-oProxyCommand=sh:repo', 'ext::sh -c touch% /tmp/pwned', 'fd::3', 'transport::address', 'EXT::sh', 'git://example.org/desired.git',
  'ftp://example.org/desired.git', 'rsync://example.org/desired.git', 'javascript://x', 'ssh://-oProxyCommand=sh/desired.git',
  'ssh://%2doProxyCommand=sh/desired.git', 'ssh://-h/x', 'ssh://git@-oProxyCommand=sh/x', 'ssh://-oProxyCommand=sh@host/x',
  'ssh://%2doProxyCommand@host/x', 'ssh://user:password@host/x', 'ssh://host/-x', 'https://-host/x', 'https:///x', 'https://',
  'https://exa mple.org/x', 'https://host/x\nmore', 'https://host/x\t', '/srv/git\0x', '/srv/git\r/x', 'relative/path', './desired',
  '../desired', 'desired.git', '~/desired.git', 'host:', '-host:path', 'git@-oProxyCommand=sh:path', '-user@host:path',
  'us er@host:path', 'host:-path', '[::1:path', 'file://host/srv/x.git', 'file://user@localhost/srv/x.git', 'file://',
];

const GOOD_REPOS = [
  'https://github.com/acme/desired-state.git', 'http://127.0.0.1:8080/desired.git', 'https://[::1]:8443/desired.git',
  'ssh://git@github.com/acme/desired-state.git', 'ssh://git@127.0.0.1:2222/desired.git', 'git+ssh://git@host/x.git',
  'git@github.com:acme/desired-state.git', 'gitea.example.org:ops/desired.git', 'file:///srv/git/desired.git',
  '/srv/git/desired.git', '/srv/git/with space/desired.git',
];

const BAD_REFS = [
  '../../etc', '-b', '--upload-pack=sh', 'release..main', 'release.lock', 'release/.hidden', '.release', 'release.', 'a//b',
  '/release', 'release/', 'rel ease', 'rel\tease', 'rel~1', 'rel^', 'rel:x', 'rel?', 'rel*', 'rel[x]', 'rel\\x', 'rel@{1}', '@',
  'refs/heads', 'refs/heads/', 'refs/heads/../x',
];

const BAD_PATTERNS = ['-*', '--upload-pack=*', 'prod-*..', '../prod-*', 'prod *', 'prod~*', 'prod^*', 'prod:*', 'refs/tags/', 'refs/tags/-x*', '.prod-*', 'prod-*.lock', 'prod-*/', 'prod\\*', 'prod@{*'];

const WILDCARDS = [
  '0.0.0.0:9321', '0:9321', '0.0.0:9321', '0.0:9321', '00:9321', '0x0:9321', '0x00000000:9321', '000.000.000.000:9321', '0.0x0.0.0:9321',
  '[::]:9321', '[0:0::0]:9321', '[::0]:9321', '[0:0:0:0:0:0:0:0]:9321', '[::0.0.0.0]:9321', '[::ffff:0.0.0.0]:9321', '[::ffff:0:0]:9321',
  '[0::ffff:0000:0000]:9321', ':9321',
];

describe('host config: what reaches git and the network', () => {
  after(removeScratchDirs);

  it(`refuses every repo that could reach git as an option or another transport (${BAD_REPOS.length} cases), naming "repo"`, async () => {
    for (const repo of BAD_REPOS) {
      const problems = await problemsOf(`repo: ${yamlString(repo)}\n${HOST}tagPattern: prod-*\n`);
      assert.equal(problems.length, 1, `${JSON.stringify(repo)}: ${problems.join('\n')}`);
      assert.match(problems[0] as string, /^\/etc\/edge-reconciler\/config\.yaml:1: "repo" .* \(at \/repo\) \[CONFIG_INVALID\]$/, JSON.stringify(repo));
    }
  });

  it('takes ssh and http(s) URLs, host:path, file:// URLs and absolute paths', async () => {
    for (const repo of GOOD_REPOS) assert.equal((await parseHostConfig(FILE, `repo: ${yamlString(repo)}\n${HOST}`)).repo, repo);
  });

  it('keeps the password of an https URL out of the URL git gets and out of every problem', async () => {
    const token = 'ghp_UrlTokenThatMustNeverShow0123456789';
    const located = parseRepo(`https://deploy:${token}@git.example.org/ops/desired.git`);
    assert.deepEqual(located, { kind: 'http', url: 'https://git.example.org/ops/desired.git', credentials: { user: 'deploy', password: token } });
    assert.deepEqual(parseRepo('https://deploy:p%40ss@git.example.org/x.git').credentials, { user: 'deploy', password: 'p@ss' });
    for (const text of [
      `repo: ssh://git:${token}@host/x.git\n${HOST}`,
      `repo: https://u:${token}@host/x.git\n${HOST}auth:\n  tokenFile: /nonexistent/token\n`,
      `repo: https://u:${token}@-host/x.git\n${HOST}`,
    ]) {
      const problems = await problemsOf(text);
      assert.ok(problems.length > 0);
      for (const problem of problems) assert.ok(!problem.includes(token), problem);
    }
  });

  it(`refuses refs git would not take (${BAD_REFS.length} cases), naming "ref"`, async () => {
    for (const ref of BAD_REFS) {
      const problems = await problemsOf(`${REPO}${HOST}ref: ${yamlString(ref)}\n`);
      assert.ok(problems.length >= 1, JSON.stringify(ref));
      assert.ok(problems.every((problem) => problem.includes('(at /ref)')), `${JSON.stringify(ref)}: ${problems.join('\n')}`);
    }
  });

  it('reads a short ref as a branch, and takes full ref names and commit ids as they are', () => {
    assert.equal(fullRefName('release'), 'refs/heads/release');
    assert.equal(fullRefName('team/release'), 'refs/heads/team/release');
    assert.equal(fullRefName('refs/heads/release'), 'refs/heads/release');
    assert.equal(fullRefName('refs/tags/prod-1.0.0'), 'refs/tags/prod-1.0.0');
    assert.equal(fullRefName('HEAD'), 'HEAD');
    assert.equal(fullRefName('a'.repeat(40)), 'a'.repeat(40));
  });

  it(`refuses tag patterns git would not take (${BAD_PATTERNS.length} cases), naming "tagPattern"`, async () => {
    for (const pattern of BAD_PATTERNS) {
      const problems = await problemsOf(`${REPO}${HOST}tagPattern: ${yamlString(pattern)}\n`);
      assert.deepEqual(problems.length, 1, `${JSON.stringify(pattern)}: ${problems.join('\n')}`);
      assert.match(problems[0] as string, /:3: "tagPattern" .* \(at \/tagPattern\) \[CONFIG_INVALID\]$/, JSON.stringify(pattern));
    }
    for (const pattern of ['prod-*', 'refs/tags/prod-*', 'v[0-9]*', 'prod-?.*', 'release/*']) {
      assert.equal((await parseHostConfig(FILE, `${REPO}${HOST}tagPattern: ${yamlString(pattern)}\n`)).tagPattern, pattern);
    }
  });

  it(`refuses every spelling of a wildcard listen address (${WILDCARDS.length} cases) unless allowPublicListen`, async () => {
    for (const listen of WILDCARDS) {
      const problems = await problemsOf(`${REPO}${HOST}listen: ${yamlString(listen)}\n`);
      assert.equal(problems.length, 1, listen);
      assert.match(problems[0] as string, /:3: "listen" .* would listen on every interface: .* \(at \/listen\)/, listen);
      await parseHostConfig(FILE, `${REPO}${HOST}listen: ${yamlString(listen)}\nallowPublicListen: true\n`);
    }
  });

  it('refuses host names in listen (they may resolve anywhere) and normalises what it takes', async () => {
    for (const listen of ['example.org:9321', 'metadata:80', '[fe80::1%eth0]:9321', '[example.org]:80', '127.0.0.1:99999', '1.2.3.4.5:80', '0x100000000:80']) {
      assert.match((await problemsOf(`${REPO}${HOST}listen: ${yamlString(listen)}\n`))[0] ?? '', /"listen" .* \(at \/listen\)/, listen);
    }
    const listenOf = async (listen: string) => (await parseHostConfig(FILE, `${REPO}${HOST}listen: ${yamlString(listen)}\n`)).listen;
    assert.equal(await listenOf('127.1:9321'), '127.0.0.1:9321');
    assert.equal(await listenOf('[0:0::1]:9321'), '[::1]:9321');
    assert.equal(await listenOf('[::ffff:127.0.0.1]:9321'), '[::ffff:7f00:1]:9321');
    assert.equal(await listenOf('localhost:9321'), 'localhost:9321');
    assert.equal(await listenOf('100.101.102.103:9321'), '100.101.102.103:9321');
  });

  it('refuses a token file with an ssh repo, and a URL password beside a token file', async () => {
    const dir = await scratchDir('edge-config-');
    await writeFile(join(dir, 'token'), 'tok', { mode: 0o600 });
    assert.deepEqual(await problemsOf(`repo: git@github.com:acme/x.git\n${HOST}auth:\n  tokenFile: ${dir}/token\n`), [
      `${FILE}:4: "auth.tokenFile" is for http(s) URLs, and "repo" git@github.com:acme/x.git is not one (use "auth.sshKeyFile" for ssh) (at /auth/tokenFile) [CONFIG_INVALID]`,
    ]);
    assert.deepEqual(await problemsOf(`repo: https://u:secret-pw@host/x.git\n${HOST}auth:\n  tokenFile: ${dir}/token\n`), [
      `${FILE}:4: "repo" carries a password in its URL and "auth.tokenFile" is set: keep the token in the token file only (at /auth/tokenFile) [CONFIG_INVALID]`,
    ]);
  });

  it('refuses credential files another user owns, trust roots others can write, and a secrets dir others can open', async () => {
    const dir = await scratchDir('edge-config-');
    const stranger = 65534;
    await writeFile(join(dir, 'key'), 'k', { mode: 0o600 });
    await writeFile(join(dir, 'token'), 't', { mode: 0o600 });
    await writeFile(join(dir, 'webhook'), 'w', { mode: 0o600 });
    await writeFile(join(dir, 'signers'), 's', { mode: 0o666 });
    await writeFile(join(dir, 'known_hosts'), 'h', { mode: 0o644 });
    await mkdir(join(dir, 'gnupg'), { mode: 0o777 });
    await mkdir(join(dir, 'secrets'), { mode: 0o755 });
    await chmod(join(dir, 'signers'), 0o666);
    await chmod(join(dir, 'gnupg'), 0o777);
    for (const file of ['key', 'token', 'webhook', 'known_hosts']) await chown(join(dir, file), stranger, stranger);
    const text = `repo: https://git.example.org/x.git\n${HOST}secretsDir: ${dir}/secrets\nauth:\n  sshKeyFile: ${dir}/key\n  tokenFile: ${dir}/token\n  knownHostsFile: ${dir}/known_hosts\n` +
      `trust:\n  requireSignatures: true\n  allowedSignersFile: ${dir}/signers\n  gpgHome: ${dir}/gnupg\nwebhook:\n  enabled: true\n  secretFile: ${dir}/webhook\n`;
    assert.deepEqual((await problemsOf(text)).sort(), [
      `${FILE}:10: "trust.allowedSignersFile" ${dir}/signers has mode 0666: anyone who can write it decides what is trusted; make it writable by its owner only (at /trust/allowedSignersFile) [CONFIG_INVALID]`,
      `${FILE}:11: "trust.gpgHome" ${dir}/gnupg has mode 0777: anyone who can write it decides what is trusted; make it writable by its owner only (at /trust/gpgHome) [CONFIG_INVALID]`,
      `${FILE}:14: "webhook.secretFile" ${dir}/webhook is owned by uid ${stranger}: it must belong to the agent's user or root (at /webhook/secretFile) [CONFIG_INVALID]`,
      `${FILE}:3: "secretsDir" ${dir}/secrets has mode 0755: make it 0700 (open to its owner only) (at /secretsDir) [CONFIG_INVALID]`,
      `${FILE}:5: "auth.sshKeyFile" ${dir}/key is owned by uid ${stranger}: it must belong to the agent's user or root (at /auth/sshKeyFile) [CONFIG_INVALID]`,
      `${FILE}:6: "auth.tokenFile" ${dir}/token is owned by uid ${stranger}: it must belong to the agent's user or root (at /auth/tokenFile) [CONFIG_INVALID]`,
      `${FILE}:7: "auth.knownHostsFile" ${dir}/known_hosts is owned by uid ${stranger}: it must belong to the agent's user or root (at /auth/knownHostsFile) [CONFIG_INVALID]`,
    ].sort());
  });

  it('refuses a secret in the secrets dir that another user owns or others can read, without its content', async () => {
    const dir = await scratchDir('edge-secrets-');
    await writeFile(join(dir, 'DB_PASSWORD'), 'pw-NeverShown-1', { mode: 0o600 });
    await chown(join(dir, 'DB_PASSWORD'), 65534, 65534);
    await writeFile(join(dir, 'API_KEY'), 'key-NeverShown-2', { mode: 0o644 });
    await writeFile(join(dir, 'OK'), 'fine', { mode: 0o600 });
    const problems = await problemsOf(`${REPO}${HOST}secretsDir: ${dir}\n`);
    assert.deepEqual(problems.sort(), [
      `${FILE}:3: secret file ${dir}/API_KEY in "secretsDir" has mode 0644: make it 0600 (at /secretsDir) [CONFIG_INVALID]`,
      `${FILE}:3: secret file ${dir}/DB_PASSWORD in "secretsDir" is owned by uid 65534: it must belong to the agent's user or root (at /secretsDir) [CONFIG_INVALID]`,
    ]);
    assert.ok(problems.every((problem) => !problem.includes('NeverShown')));
  });
});

describe('userinfo in logs and messages', () => {
  it('drops a URL\'s userinfo from any text, and a JSON log line stays JSON', () => {
    const line = JSON.stringify({ repo: 'https://deploy:tok3n@git.example.org/x.git', other: 'http://a.example', mail: 'ops@example.org', ssh: 'ssh://git@host/x' });
    const clean = scrub(line, []);
    assert.deepEqual(JSON.parse(clean), { repo: 'https://git.example.org/x.git', other: 'http://a.example', mail: 'ops@example.org', ssh: 'ssh://host/x' });
    assert.equal(scrub('cannot fetch from https://u:p@h/x: fatal', []), 'cannot fetch from https://h/x: fatal');
  });
});
