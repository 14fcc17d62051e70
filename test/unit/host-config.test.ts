/**
 * The host config: the commented default loads as is, every problem names the file, line and key, secret files are
 * checked without their content ever showing, and `init` writes a private config.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeError, formatProblem } from '../../reconciler/errors.js';
import { loadHostConfig, parseHostConfig, parseListen, renderDefaultConfig, type HostConfig } from '../../reconciler/config/host-config.js';
import { CONFIG_SCHEMA_FILE, configSchemaText, hostConfigSchema } from '../../reconciler/config/host-config-schema.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { removeScratchDirs, scratchDir } from '../helpers/scratch.js';

const FILE = '/etc/edge-reconciler/config.yaml';
const BASE = 'repo: git@github.com:acme/desired-state.git\nhost: lod-prod\n';

async function problemsOf(text: string): Promise<string[]> {
  try {
    await parseHostConfig(FILE, text);
  } catch (error) {
    assert.ok(error instanceof EdgeError, String(error));
    assert.equal(error.code, 'CONFIG_INVALID');
    assert.equal(error.stage, 'fetch');
    assert.equal(error.retry, 'invalid');
    return error.problems.map(formatProblem);
  }
  assert.fail('the config loaded');
}

async function tempDir(): Promise<string> {
  return scratchDir('edge-config-');
}

/** Runs one command module as its own CLI (the way main.ts registers it), in a real process. */
async function runCommand(module: string, register: string, args: string[]) {
  const script = `import { Command } from 'commander'; import { ${register} } from '${join(PROJECT_ROOT, 'dist', 'reconciler', 'cli', module)}';
const program = new Command().name('edge-reconciler'); ${register}(program); await program.parseAsync(process.argv.slice(1), { from: 'user' });`;
  const result = await execa(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { cwd: PROJECT_ROOT, reject: false });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Every key path of the schema: `poll`, `poll.intervalSeconds`, `maintenance.windows.cron`, ... */
function schemaKeys(node: { properties?: object; items?: object } = hostConfigSchema, prefix = ''): string[] {
  const keys: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {}) as [string, { properties?: object; items?: { properties?: object } }][]) {
    keys.push(`${prefix}${key}`);
    keys.push(...schemaKeys(child, `${prefix}${key}.`));
    if (child.items?.properties) keys.push(...schemaKeys(child.items, `${prefix}${key}.`));
  }
  return keys;
}

describe('host config', () => {
  after(removeScratchDirs);

  it('systemd/config.schema.json is up to date (see writeConfigSchema)', () => {
    assert.equal(readFileSync(join(PROJECT_ROOT, CONFIG_SCHEMA_FILE), 'utf8'), configSchemaText());
  });

  it('the commented default loads as is, with every default filled in', async () => {
    const config = await parseHostConfig(FILE, renderDefaultConfig({ repo: 'https://git.example.org/ops/desired.git', host: 'lod-prod' }));
    const expected: HostConfig = {
      repo: 'https://git.example.org/ops/desired.git',
      ref: 'release',
      host: 'lod-prod',
      root: '/',
      stateDir: '/var/lib/edge-reconciler',
      secretsDir: '/etc/edge-reconciler/secrets',
      listen: '127.0.0.1:9321',
      allowPublicListen: false,
      poll: { enabled: true, intervalSeconds: 60, jitterSeconds: 10 },
      webhook: { enabled: false },
      auth: {},
      apps: { insteadOf: {}, auth: [], fetchTimeoutSeconds: 60 },
      trust: { requireSignatures: false, allowRewinds: false },
      limits: { maxFileBytes: 16777216, maxTreeBytes: 134217728 },
      drift: { policy: 'heal', watch: true },
      deadmanSeconds: 120,
      keepGenerations: 10,
      hookTimeoutSeconds: 60,
      maintenance: { timezone: 'UTC', windows: [] },
      backoff: { initialSeconds: 5, maxSeconds: 600 },
      forge: { deployments: false },
      waves: { enabled: true, timeoutSeconds: 3600, recheckSeconds: 15, peerPort: 9321, peerScheme: 'http', peers: {} },
      fleet: { peerTimeoutSeconds: 2, refreshSeconds: 30 },
    };
    assert.deepEqual(config, expected);
  });

  it('the commented default has a comment line above every key, with its default', () => {
    const lines = renderDefaultConfig({}).split('\n');
    for (const path of schemaKeys()) {
      const key = path.split('.').at(-1) as string;
      const at = lines.findIndex((line) => new RegExp(`^\\s*(#\\s*)?(- )?${key}:`).test(line));
      assert.ok(at > 0, `${path} is not in the default config`);
      assert.match(lines[at - 1] ?? '', /^\s*#/, `${path} has no comment above it`);
    }
    assert.match(renderDefaultConfig({}), /# host:port of \/healthz.*\n.*Default: 127\.0\.0\.1:9321\.\nlisten: 127\.0\.0\.1:9321/);
  });

  it('the commented default still loads with its examples uncommented (but one of ref and tagPattern)', async () => {
    const dir = await tempDir();
    const secretFile = join(dir, 'webhook');
    await writeFile(secretFile, 'whsec-Hx81', { mode: 0o600 });
    const uncommented = renderDefaultConfig({ host: 'lod-prod' })
      .replace(/^ref: release$/m, '')
      .replace(/^(\s*)# (tagPattern|windows| {2}- | {4}\w+:)/gm, '$1$2')
      .replace('enabled: false', 'enabled: true')
      .replace('# secretFile: /etc/edge-reconciler/secrets/.webhook-secret', `secretFile: ${secretFile}`);
    const config = await parseHostConfig(FILE, uncommented);
    assert.equal(config.tagPattern, 'prod-*');
    assert.equal(config.ref, undefined);
    assert.equal(config.maintenance.windows.length, 2);
  });

  it('names the file, line and key of an unknown field', async () => {
    const problems = await problemsOf(`${BASE}poll:\n  intervalSeconds: 30\npol: 5\n`);
    assert.deepEqual(problems, [`${FILE}:5: unknown field "pol" (at /) [SCHEMA]`]);
  });

  it('reports every problem at once, each at its line', async () => {
    const problems = await problemsOf(`repo: x\nhost: Lod_Prod\ndrift:\n  policy: fix\nkeepGenerations: 1\n`);
    assert.deepEqual(problems.sort(), [
      `${FILE}:1: "repo" "x" is neither a URL nor an absolute path: use an ssh or https URL (ssh://git@host/path, https://host/path), host:path (git@host:path), a file:// URL or an absolute path (at /repo) [CONFIG_INVALID]`,
      `${FILE}:2: must match pattern "^[a-z0-9][a-z0-9-]*$" (at /host) [SCHEMA]`,
      `${FILE}:4: must be one of "heal", "report" (at /drift/policy) [SCHEMA]`,
      `${FILE}:5: must be >= 2 (at /keepGenerations) [SCHEMA]`,
    ]);
  });

  it('names a missing required key and a yaml syntax error with its line', async () => {
    assert.deepEqual(await problemsOf('repo: /srv/desired.git\n'), [`${FILE}:1: missing required field "host" (at /) [SCHEMA]`]);
    const [syntax] = await problemsOf(`${BASE}poll:\n  enabled: true\n  enabled: false\n`);
    assert.match(syntax ?? '', new RegExp(`^${FILE}:5: yaml syntax: .*\\[YAML_SYNTAX\\]$`));
  });

  it('a missing config file says to run init', async () => {
    const path = join(await tempDir(), 'config.yaml');
    await assert.rejects(loadHostConfig(path), (error: EdgeError) => {
      assert.equal(error.code, 'CONFIG_MISSING');
      assert.match(error.message, new RegExp(`host config ${path} does not exist: run edge-reconciler init`));
      return true;
    });
  });

  it('an empty key takes its default', async () => {
    const config = await parseHostConfig(FILE, `${BASE}auth:\nlisten:\n`);
    assert.deepEqual(config.auth, {});
    assert.equal(config.listen, '127.0.0.1:9321');
  });

  it('follows either a branch or a tag pattern, never both', async () => {
    const tags = await parseHostConfig(FILE, `${BASE}tagPattern: prod-*\n`);
    assert.equal(tags.tagPattern, 'prod-*');
    assert.equal(tags.ref, undefined);
    assert.equal((await parseHostConfig(FILE, `${BASE}ref: main\n`)).ref, 'main');
    assert.deepEqual(await problemsOf(`${BASE}ref: main\ntagPattern: prod-*\n`), [
      `${FILE}:4: set either "ref" (a branch) or "tagPattern" (tags), not both (at /tagPattern) [CONFIG_INVALID]`,
    ]);
  });

  it('never listens on every interface unless allowPublicListen says so', async () => {
    for (const listen of ['0.0.0.0:9321', '"[::]:9321"', '":9321"', '"[0:0::0]:80"']) {
      const [problem] = await problemsOf(`${BASE}listen: ${listen}\n`);
      assert.match(problem ?? '', /:3: "listen" .* would listen on every interface: .*allowPublicListen: true.* \(at \/listen\)/, listen);
    }
    assert.equal((await parseHostConfig(FILE, `${BASE}listen: 0.0.0.0:9321\nallowPublicListen: true\n`)).listen, '0.0.0.0:9321');
    assert.equal((await parseHostConfig(FILE, `${BASE}listen: 100.101.102.103:9321\n`)).listen, '100.101.102.103:9321');
    assert.match((await problemsOf(`${BASE}listen: localhost\n`))[0] ?? '', /"listen" "localhost" must be host:port/);
  });

  it('splits listen addresses', () => {
    assert.deepEqual(parseListen('127.0.0.1:9321'), { host: '127.0.0.1', port: 9321 });
    assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
    assert.deepEqual(parseListen('localhost:8080'), { host: 'localhost', port: 8080 });
    assert.deepEqual(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 }, 'port 0: any free port (tests)');
    for (const bad of ['127.0.0.1', '127.0.0.1:70000', '::1:80', '[nope]:80', 'a b:80']) assert.equal(parseListen(bad), undefined, bad);
  });

  it('checks the rules between keys: jitter, backoff, webhook secret, signatures', async () => {
    const problems = await problemsOf(
      `${BASE}poll:\n  intervalSeconds: 10\n  jitterSeconds: 10\nbackoff:\n  initialSeconds: 60\n  maxSeconds: 30\nwebhook:\n  enabled: true\ntrust:\n  requireSignatures: true\n`,
    );
    assert.deepEqual(problems, [
      `${FILE}:5: "poll.jitterSeconds" must be less than "poll.intervalSeconds" (at /poll/jitterSeconds) [CONFIG_INVALID]`,
      `${FILE}:10: "webhook.enabled" needs "webhook.secretFile" (at /webhook) [CONFIG_INVALID]`,
      `${FILE}:12: "trust.requireSignatures" needs "trust.allowedSignersFile" or "trust.gpgHome" (at /trust/requireSignatures) [CONFIG_INVALID]`,
      `${FILE}:8: "backoff.maxSeconds" must be at least "backoff.initialSeconds" (at /backoff/maxSeconds) [CONFIG_INVALID]`,
    ]);
  });

  it('checks the time zone and every window cron, naming the key', async () => {
    const problems = await problemsOf(
      `${BASE}maintenance:\n  timezone: Europe/Berlln\n  windows:\n    - action: allow\n      cron: "* 2-4 * * 1-5"\n    - action: deny\n      cron: "0 25 * * *"\n`,
    );
    assert.deepEqual(problems, [
      `${FILE}:4: "maintenance.timezone" "Europe/Berlln" is not an IANA time zone (e.g. UTC, Europe/Berlin) (at /maintenance/timezone) [CONFIG_INVALID]`,
      `${FILE}:9: cron "0 25 * * *" does not parse: invalid value for hour: 25 (at /maintenance/windows/1/cron) [CONFIG_INVALID]`,
    ]);
    const config = await parseHostConfig(FILE, `${BASE}maintenance:\n  timezone: Europe/Berlin\n  windows:\n    - action: deny\n      cron: "0 12 * * 5"\n      durationMinutes: 3600\n`);
    assert.deepEqual(config.maintenance, { timezone: 'Europe/Berlin', windows: [{ action: 'deny', cron: '0 12 * * 5', durationMinutes: 3600 }] });
  });

  it('reads the webhook secret, which never shows in JSON or in an error', async () => {
    const dir = await tempDir();
    const secretFile = join(dir, 'webhook-secret');
    const secret = 'whsec-Qp73DistinctWebhookSecret';
    const text = `${BASE}webhook:\n  enabled: true\n  secretFile: ${secretFile}\n`;

    assert.deepEqual(await problemsOf(text), [`${FILE}:5: "webhook.secretFile" ${secretFile} does not exist (at /webhook/secretFile) [CONFIG_INVALID]`]);

    await writeFile(secretFile, `${secret}\n`, { mode: 0o644 });
    const loose = await problemsOf(text);
    assert.deepEqual(loose, [`${FILE}:5: "webhook.secretFile" ${secretFile} has mode 0644: make it 0600 (readable by its owner only) (at /webhook/secretFile) [CONFIG_INVALID]`]);

    await writeFile(join(dir, 'empty'), '\n', { mode: 0o600 });
    assert.match((await problemsOf(text.replace(secretFile, join(dir, 'empty'))))[0] ?? '', /"webhook.secretFile" .*empty is empty/);

    const ok = join(dir, 'ok-secret');
    await writeFile(ok, `${secret}\n`, { mode: 0o600 });
    const config = await parseHostConfig(FILE, text.replace(secretFile, ok));
    assert.equal(config.webhook.secret, secret);
    assert.equal(JSON.stringify(config).includes(secret), false);
    assert.deepEqual(Object.keys(config.webhook).sort(), ['enabled', 'secretFile']);
  });

  it('checks the auth and trust files it names', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'key'), 'k', { mode: 0o640 });
    await writeFile(join(dir, 'signers'), 'ops@example.org ssh-ed25519 AAAA', { mode: 0o644 });
    await mkdir(join(dir, 'gnupg'), { mode: 0o700 });
    const problems = await problemsOf(
      `repo: https://git.example.org/ops/desired.git\nhost: lod-prod\nauth:\n  sshKeyFile: ${dir}/key\n  tokenFile: ${dir}/token\ntrust:\n  requireSignatures: true\n  allowedSignersFile: ${dir}/signers\n  gpgHome: ${dir}/signers\n`,
    );
    assert.deepEqual(problems, [
      `${FILE}:4: "auth.sshKeyFile" ${dir}/key has mode 0640: make it 0600 (readable by its owner only) (at /auth/sshKeyFile) [CONFIG_INVALID]`,
      `${FILE}:5: "auth.tokenFile" ${dir}/token does not exist (at /auth/tokenFile) [CONFIG_INVALID]`,
      `${FILE}:9: "trust.gpgHome" ${dir}/signers is not a directory (at /trust/gpgHome) [CONFIG_INVALID]`,
    ]);
    const config = await parseHostConfig(FILE, `${BASE}trust:\n  requireSignatures: true\n  gpgHome: ${dir}/gnupg\n`);
    assert.deepEqual(config.trust, { requireSignatures: true, gpgHome: `${dir}/gnupg`, allowRewinds: false });
  });

  describe('edge-reconciler init', () => {
    it('writes a private commented config and the secrets dir, and then refuses to overwrite it', async () => {
      const dir = await tempDir();
      const config = join(dir, 'etc', 'config.yaml');
      const args = ['init', '--config', config, '--repo', 'git@github.com:acme/desired-state.git', '--host', 'lod-prod', '--secrets-dir', join(dir, 'secrets'), '--state-dir', join(dir, 'state')];
      const first = await runCommand('init.js', 'registerInit', args);
      assert.equal(first.exitCode, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`wrote ${config} \\(mode 0600\\) for host lod-prod`));
      assert.match(first.stdout, /next steps:/);
      assert.equal((await stat(config)).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir, 'secrets'))).mode & 0o777, 0o700);
      const loaded = await loadHostConfig(config);
      assert.equal(loaded.stateDir, join(dir, 'state'));
      assert.equal(loaded.secretsDir, join(dir, 'secrets'));

      await writeFile(config, `${await readFile(config, 'utf8')}# edited by hand\n`);
      const again = await runCommand('init.js', 'registerInit', args);
      assert.equal(again.exitCode, 1);
      assert.match(again.stderr, new RegExp(`host config ${config} already exists: edit it, or pass --force`));
      assert.match(await readFile(config, 'utf8'), /# edited by hand/);

      const forced = await runCommand('init.js', 'registerInit', [...args, '--force']);
      assert.equal(forced.exitCode, 0, forced.stderr);
      assert.doesNotMatch(await readFile(config, 'utf8'), /# edited by hand/);
    });

    it('refuses a bad host name before writing anything', async () => {
      const dir = await tempDir();
      const config = join(dir, 'config.yaml');
      const result = await runCommand('init.js', 'registerInit', ['init', '--config', config, '--host', 'Lod_Prod', '--secrets-dir', join(dir, 'secrets')]);
      assert.equal(result.exitCode, 1);
      assert.match(result.stderr, /\[CONFIG_INVALID\][\s\S]*config\.yaml:\d+: must match pattern .* \(at \/host\)/);
      await assert.rejects(stat(config), /ENOENT/);
    });
  });
});
