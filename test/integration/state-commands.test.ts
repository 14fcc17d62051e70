/**
 * The commands that read and steer a host's state, as an operator meets them: status after unpin, rollback and a
 * poll on a suspended host, a repo path that does not exist, a mistyped --host, a secrets dir others may read,
 * and each problem printed once.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, writeSecretsDir } from '../helpers/cli.js';
import { exampleAppArgs } from '../helpers/app-repos.js';
import { commitEdit, exampleGitRepo } from '../helpers/git-repo.js';

interface ApplyJson {
  result: string;
  generation?: number;
  error?: { code: string; stage: string; message: string };
}

const occurrences = (text: string, part: string) => text.split(part).length - 1;

describe('state commands (sandbox root, activation recorded)', function () {
  this.timeout(120_000);
  const cleanup: string[] = [];
  let secretsDir: string;
  let repo: string;
  let root: string;
  let stateDir: string;

  const hostArgs = (host = 'lod-prod') => ['--host', host, '--root', root, '--state-dir', stateDir, '--dry-activate', '--quiet'];
  const apply = async (options: { host?: string; repo?: string; json?: boolean; secrets?: string } = {}) => {
    const args = ['apply', '--repo', options.repo ?? repo, ...hostArgs(options.host), '--secrets-dir', options.secrets ?? secretsDir, ...(await exampleAppArgs())];
    const result = await runCli(options.json === false ? args : [...args, '--json']);
    return { ...result, json: JSON.parse(options.json === false ? '{}' : result.stdout || '{}') as ApplyJson };
  };
  const envFile = () => readFile(join(root, 'etc/edge-reconciler/env/lod.env'), 'utf8');
  const status = () => runCli(['status', '--state-dir', stateDir]);

  beforeEach(async () => {
    secretsDir = await writeSecretsDir();
    repo = await exampleGitRepo();
    root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    cleanup.push(secretsDir, repo, root, stateDir);
    const first = await apply();
    assert.equal(first.exitCode, 0, first.stderr);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('status no longer shows the pin once unpin has lifted it', async () => {
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 8'));
    assert.equal((await apply()).exitCode, 0);
    assert.equal((await runCli(['rollback', ...hostArgs()])).exitCode, 0);
    assert.match((await status()).stdout, /pinned:/);
    const unpinned = await runCli(['unpin', '--state-dir', stateDir]);
    assert.match(unpinned.stdout, /unpinned generation 3/);
    assert.doesNotMatch((await status()).stdout, /pinned/);
    assert.equal(JSON.parse((await runCli(['status', '--state-dir', stateDir, '--json'])).stdout).pinned, undefined);
  });

  it('rollback refuses to change files while the host is suspended', async () => {
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 8'));
    assert.equal((await apply()).exitCode, 0);
    const live = await envFile();
    assert.equal((await runCli(['suspend', '--reason', 'db migration', '--state-dir', stateDir])).exitCode, 0);
    const rolled = await runCli(['rollback', ...hostArgs()]);
    assert.equal(rolled.exitCode, 1);
    assert.match(rolled.stderr, /\[SUSPENDED\]/);
    assert.match(rolled.stderr, /db migration/);
    assert.match(rolled.stderr, /resume/);
    assert.equal(await envFile(), live);
    assert.doesNotMatch((await status()).stdout, /pinned/);
  });

  it('a poll of a suspended host exits 0 and says it is suspended, without an error', async () => {
    assert.equal((await runCli(['suspend', '--reason', 'db migration', '--state-dir', stateDir])).exitCode, 0);
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 8'));
    const before = await envFile();
    const polled = await apply({ json: false });
    assert.equal(polled.exitCode, 0, polled.stderr);
    assert.match(polled.stdout, /suspended: .* not applied: host suspended by .*: db migration/);
    assert.doesNotMatch(polled.stderr, /error|failed/);
    assert.equal(await envFile(), before);
    const json = await apply();
    assert.equal(json.exitCode, 0);
    assert.equal(json.json.result, 'suspended');
  });

  it('names a repo path that does not exist with REPO_NOT_FOUND, for apply, plan and check', async () => {
    const missing = join(root, 'no-such-repo');
    const applied = await apply({ repo: missing });
    assert.equal(applied.exitCode, 1);
    assert.equal(applied.json.error?.code, 'REPO_NOT_FOUND');
    assert.match(applied.json.error?.message ?? '', new RegExp(`${missing} does not exist`));
    assert.doesNotMatch(applied.json.error?.message ?? '', /access rights/);
    for (const args of [['plan', '--repo', missing, '--host', 'lod-prod', '--root', root], ['check', '--repo', missing]]) {
      const result = await runCli(args);
      assert.equal(result.exitCode, 1, args[0]);
      assert.match(result.stderr, /\[REPO_NOT_FOUND\]/, args[0]);
      assert.match(result.stderr, new RegExp(`${missing} does not exist`), args[0]);
      assert.doesNotMatch(result.stderr, /INTERNAL|ENOENT/, args[0]);
    }
  });

  it('refuses a run with another --host on this host\'s state dir and records nothing', async () => {
    const before = await readFile(join(stateDir, 'status.json'), 'utf8');
    const typo = await apply({ host: 'lod-prd' });
    assert.equal(typo.exitCode, 1);
    assert.equal(typo.json.error?.code, 'HOST_MISMATCH');
    assert.match(typo.json.error?.message ?? '', /belongs to host lod-prod.*lod-prd/);
    assert.equal(await readFile(join(stateDir, 'status.json'), 'utf8'), before);
    const rolled = await runCli(['rollback', ...hostArgs('lod-prd')]);
    assert.match(rolled.stderr, /\[HOST_MISMATCH\]/);
    assert.equal(await readFile(join(stateDir, 'status.json'), 'utf8'), before);
  });

  it('refuses a secret owned by another user and a secrets dir others may enter, naming them', async () => {
    const secret = join(secretsDir, 'LOD_DB_PASSWORD');
    await chown(secret, 65534, 65534);
    const foreign = await apply();
    assert.equal(foreign.exitCode, 1);
    assert.equal(foreign.json.error?.code, 'SECRET_PERMISSIONS');
    assert.match(foreign.json.error?.message ?? '', new RegExp(`${secret} is owned by uid 65534`));
    await chown(secret, process.getuid?.() ?? 0, process.getgid?.() ?? 0);

    await chmod(secretsDir, 0o755);
    const open = await apply();
    assert.equal(open.exitCode, 1);
    assert.equal(open.json.error?.code, 'SECRETS_DIR_PERMISSIONS');
    assert.match(open.json.error?.message ?? '', new RegExp(`${secretsDir} has mode 755`));
    await chmod(secretsDir, 0o700);
    assert.equal((await apply()).exitCode, 0);
  });

  it('refuses a number option that is not a whole number with USAGE, naming the option, and changes nothing', async () => {
    const before = await readFile(join(stateDir, 'status.json'), 'utf8');
    for (const [command, option, value] of [['apply', '--keep', 'ten'], ['apply', '--wait', '-1'], ['apply', '--deadman-seconds', '0'], ['rollback', '--to', 'latest']] as const) {
      const args = command === 'apply'
        ? ['apply', '--repo', repo, ...hostArgs(), '--secrets-dir', secretsDir, option, value]
        : ['rollback', ...hostArgs(), option, value];
      const result = await runCli(args);
      assert.equal(result.exitCode, 1, `${command} ${option} ${value}`);
      assert.match(result.stderr, /\[USAGE\]/, `${command} ${option} ${value}`);
      assert.match(result.stderr, new RegExp(`${option} must be a whole number`), `${command} ${option} ${value}`);
    }
    assert.equal(await readFile(join(stateDir, 'status.json'), 'utf8'), before);
  });

  it('prints a broken commit\'s problem once in apply, and its code once in status', async () => {
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: [4'));
    const broken = await apply({ json: false });
    assert.equal(broken.exitCode, 1);
    const output = broken.stdout + broken.stderr;
    assert.equal(occurrences(output, 'hosts/lod-prod.yaml:7'), 1, output);
    assert.equal(occurrences((await status()).stdout, '[YAML_SYNTAX]'), 1);
    assert.equal(occurrences((await runCli(['history', '--state-dir', stateDir])).stdout, '[YAML_SYNTAX]'), 1);
  });
});
