/**
 * `apply` of real git commits into sandbox roots, activation recorded (--dry-activate): what is written, what
 * activation would run, what the state dir remembers, and what is refused. The same behaviours run against a
 * real systemd in test/e2e.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { runCli, writeSecretsDir } from '../helpers/cli.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { waitUntil } from '../helpers/wait.js';
import { exampleAppArgs } from '../helpers/app-repos.js';
import { commitEdit, exampleGitRepo, head, revertLast } from '../helpers/git-repo.js';

interface ApplyJson {
  result: string;
  revision: string;
  generation?: number;
  changes: { path: string; action: string }[];
  commands: string[][];
  error?: { code: string; stage: string; message: string; problems?: { code: string; message: string }[] };
}

describe('apply (sandbox root, activation recorded)', function () {
  this.timeout(120_000);
  const cleanup: string[] = [];
  let secretsDir: string;
  let repo: string;
  let root: string;
  let stateDir: string;
  /** Maps the example's app repos (lod, model-gateway) to local ones. */
  let appArgs: string[];

  const apply = async (host = 'lod-prod', extra: string[] = []) => {
    const result = await runCli(['apply', '--repo', repo, '--host', host, '--root', root, '--state-dir', stateDir, '--secrets-dir', secretsDir, ...appArgs, '--dry-activate', '--json', '--quiet', ...extra]);
    return { ...result, json: JSON.parse(result.stdout || '{}') as ApplyJson };
  };
  const commands = (json: ApplyJson) => json.commands.map((argv) => argv.join(' '));

  before(async () => {
    secretsDir = await writeSecretsDir();
    cleanup.push(secretsDir);
    appArgs = await exampleAppArgs();
  });
  beforeEach(async () => {
    repo = await exampleGitRepo();
    root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    cleanup.push(repo, root, stateDir);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('converges an empty root to lod-prod: every file, env files 0600, units enabled and started', async () => {
    const { exitCode, json, stderr } = await apply();
    assert.equal(exitCode, 0, stderr);
    assert.equal(json.result, 'applied');
    assert.equal(json.revision, await head(repo));
    assert.equal(json.generation, 1);
    assert.equal(json.changes.length, 12, 'eleven files and the lod release\'s current link');
    assert.equal((await stat(join(root, 'etc/edge-reconciler/env/lod.env'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(root, 'etc/systemd/system/lod.service'))).mode & 0o777, 0o644);
    assert.match(await readFile(join(root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), /^SESSION_SECRET=sess-Kk29SessionSecretValue$/m);
    const run = commands(json);
    assert.ok(run.includes('systemctl daemon-reload'));
    assert.ok(run.includes('systemctl enable lod-backup.timer lod.service prometheus-node-exporter.service'));
    assert.ok(run.includes('systemctl start lod.service'));
    assert.ok(!run.some((command) => command.includes('restart lod.service')));
  });

  it("leaves none of the validators' temp trees behind (removed when the run ends, after the apply)", async () => {
    const temp = await mkdtemp(join(tmpdir(), 'edge-tmpdir-'));
    cleanup.push(temp);
    // A TMPDIR like /tmp: the confined validators (other users) make their scratch dirs in it too.
    await chmod(temp, 0o1777);
    const result = await runCli(['apply', '--repo', repo, '--host', 'caddy-router', '--root', root, '--state-dir', stateDir, '--secrets-dir', secretsDir, '--dry-activate', '--json', '--quiet'], {
      env: { TMPDIR: temp },
    });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as ApplyJson).result, 'applied');
    assert.deepEqual((await readdir(temp)).filter((name) => name.startsWith('edge-validate-')), []);
  });

  it('does nothing on a second run of the same commit', async () => {
    await apply();
    const { exitCode, json } = await apply();
    assert.equal(exitCode, 0);
    assert.equal(json.result, 'unchanged');
    assert.deepEqual(json.commands, []);
  });

  it('skips rendering on a no-op, but heals a hand edit on the next run', async () => {
    await apply();
    const noop = await runCli(['apply', '--repo', repo, '--host', 'lod-prod', '--root', root, '--state-dir', stateDir, '--secrets-dir', secretsDir, ...appArgs, '--dry-activate', '--json', '--quiet']);
    const durations = (JSON.parse(noop.stdout) as { durations: Record<string, number> }).durations;
    assert.deepEqual(Object.keys(durations), ['fetch'], 'a no-op of the live revision with untouched files only fetches');
    const unit = join(root, 'etc/systemd/system/lod.service');
    const original = await readFile(unit, 'utf8');
    await writeFile(unit, original.replace('RestartSec=2', 'RestartSec=30'));
    const healed = await apply();
    assert.equal(healed.json.result, 'applied');
    assert.deepEqual(healed.json.changes, [{ path: '/etc/systemd/system/lod.service', action: 'update' }]);
    assert.ok(commands(healed.json).includes('systemctl restart lod.service'));
    assert.equal(await readFile(unit, 'utf8'), original);
  });

  it('restarts only the unit whose env file changed', async () => {
    await apply();
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    const { exitCode, json } = await apply();
    assert.equal(exitCode, 0);
    assert.equal(json.generation, 2);
    assert.deepEqual(json.changes, [{ path: '/etc/edge-reconciler/env/lod.env', action: 'update' }]);
    assert.deepEqual(commands(json).filter((c) => c.startsWith('systemctl') && !c.includes('deadman')), ['systemctl restart lod.service']);
  });

  it('refuses a broken Caddyfile and leaves every live file as it was', async () => {
    await apply('caddy-router');
    const before = await readFile(join(root, 'etc/caddy/sites/routes.caddy'), 'utf8');
    await commitEdit(repo, 'roles/router/templates/routes.caddy.hbs', (text) => text.replace('encode zstd gzip', 'encode_all zstd'));
    const { exitCode, json } = await apply('caddy-router');
    assert.equal(exitCode, 1);
    assert.equal(json.result, 'invalid');
    assert.equal(json.error?.code, 'CADDY_INVALID');
    assert.equal(await readFile(join(root, 'etc/caddy/sites/routes.caddy'), 'utf8'), before);
    const status = JSON.parse((await runCli(['status', '--state-dir', stateDir, '--json'])).stdout);
    assert.equal(status.lastApplied.generation, 1);
    assert.equal(status.lastAttempted.result, 'invalid');
    assert.equal(status.lastAttempted.code, 'CADDY_INVALID');
  });

  it('stops and disables a unit removed from the repo before its file goes', async () => {
    await apply();
    await commitEdit(repo, 'roles/lod/role.yaml', (text) =>
      text.replace(/ {2}- kind: systemd-unit\n {4}name: lod-backup\.timer\n {4}template: lod-backup\.timer\.hbs\n/, ''),
    );
    const { exitCode, json } = await apply();
    assert.equal(exitCode, 0);
    assert.deepEqual(json.changes, [{ path: '/etc/systemd/system/lod-backup.timer', action: 'delete' }]);
    const run = commands(json);
    assert.ok(run.indexOf('systemctl stop lod-backup.timer') < run.indexOf('systemctl daemon-reload'), run.join('\n'));
    assert.ok(run.includes('systemctl disable lod-backup.timer'));
    await assert.rejects(stat(join(root, 'etc/systemd/system/lod-backup.timer')), { code: 'ENOENT' });
  });

  it('brings the previous files back when a commit is reverted', async () => {
    await apply();
    const original = await readFile(join(root, 'etc/systemd/system/lod.service'), 'utf8');
    await commitEdit(repo, 'roles/lod/templates/lod.service.hbs', (text) => text.replace('RestartSec=2', 'RestartSec=5'));
    await apply();
    assert.notEqual(await readFile(join(root, 'etc/systemd/system/lod.service'), 'utf8'), original);
    await revertLast(repo);
    const { exitCode, json } = await apply();
    assert.equal(exitCode, 0);
    assert.equal(json.generation, 3);
    assert.equal(await readFile(join(root, 'etc/systemd/system/lod.service'), 'utf8'), original);
  });

  it('refuses to overwrite a file it never managed, and takes it over with adopt: true after a backup', async () => {
    const journald = join(root, 'etc/systemd/journald.conf.d/50-edge.conf');
    await mkdir(join(root, 'etc/systemd/journald.conf.d'), { recursive: true });
    await writeFile(journald, '[Journal]\nSystemMaxUse=1G\n');
    const refused = await apply();
    assert.equal(refused.exitCode, 1);
    assert.equal(refused.json.error?.code, 'FILE_UNMANAGED');
    assert.equal(await readFile(journald, 'utf8'), '[Journal]\nSystemMaxUse=1G\n');
    await assert.rejects(stat(join(root, 'etc/systemd/system/lod.service')), { code: 'ENOENT' });

    await commitEdit(repo, 'roles/base/role.yaml', (text) => text.replace('    template: journald.conf.hbs\n', '    template: journald.conf.hbs\n    adopt: true\n'));
    const adopted = await apply();
    assert.equal(adopted.exitCode, 0, adopted.stderr);
    assert.match(await readFile(journald, 'utf8'), /SystemMaxUse=500M/);
  });

  it('rolls back by hand to the previous generation, pins the host, and unpins on a newer commit', async () => {
    await apply();
    const first = await readFile(join(root, 'etc/edge-reconciler/env/lod.env'), 'utf8');
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 8'));
    await apply();
    const rolled = await runCli(['rollback', '--host', 'lod-prod', '--root', root, '--state-dir', stateDir, '--dry-activate', '--quiet']);
    assert.equal(rolled.exitCode, 0, rolled.stderr);
    assert.equal(await readFile(join(root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), first);
    const status = await runCli(['status', '--state-dir', stateDir]);
    assert.match(status.stdout, /pinned: +generation 3: manual rollback to generation 1/);

    const pinned = await apply();
    assert.equal(pinned.exitCode, 3);
    assert.equal(pinned.json.result, 'pinned');
    assert.equal(await readFile(join(root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), first);

    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 8', 'workers: 5'));
    const newer = await apply();
    assert.equal(newer.exitCode, 0, newer.stderr);
    assert.match(await readFile(join(root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), /^LOD_WORKERS=5$/m);
    assert.doesNotMatch((await runCli(['status', '--state-dir', stateDir])).stdout, /pinned/);
  });

  it('refuses a second run while one holds the lock, naming the holder', async () => {
    await mkdir(stateDir, { recursive: true });
    const log = join(stateDir, 'holder.log');
    const holder = execa(process.execPath, [join(PROJECT_ROOT, 'dist', 'test', 'helpers', 'lock-holder.js'), join(stateDir, 'lock'), log], { reject: false });
    try {
      await waitUntil(async () => (await readFile(log, 'utf8').catch(() => '')) !== '', { timeoutMs: 60_000, what: 'the holder to take the lock' });
      const { exitCode, json } = await apply();
      assert.equal(exitCode, 1);
      assert.equal(json.error?.code, 'LOCKED');
      assert.match(json.error?.message ?? '', new RegExp(`pid ${holder.pid}`));
    } finally {
      holder.kill('SIGKILL');
      await holder;
    }
  });

  it('applies over a stale lock file whose pid was reused by a live process', async () => {
    await mkdir(stateDir, { recursive: true });
    await writeFile(join(stateDir, 'lock'), `${process.pid}\n`);
    const { exitCode, json, stderr } = await apply();
    assert.equal(exitCode, 0, stderr);
    assert.equal(json.result, 'applied');
  });

  it('never writes a stand-in for a secret: without a secrets dir, the env files that need one fail to render and nothing is written', async () => {
    const result = await runCli(['apply', '--repo', repo, '--host', 'lod-prod', '--root', root, '--state-dir', stateDir, ...appArgs, '--dry-activate', '--json', '--quiet']);
    const json = JSON.parse(result.stdout || '{}') as ApplyJson;
    assert.equal(result.exitCode, 1, result.stderr);
    assert.equal(json.result, 'invalid');
    const problems = json.error?.problems ?? [];
    assert.ok(problems.length > 0 && problems.every((problem) => problem.code === 'SECRET_MISSING'), JSON.stringify(problems));
    assert.match(problems[0]?.message ?? '', /none was given \(--secrets-dir\)/);
    assert.deepEqual(await readdir(root), [], 'nothing was written to the host');
  });

  it('refuses --root without --dry-activate', async () => {
    const result = await runCli(['apply', '--repo', repo, '--host', 'lod-prod', '--root', root, '--state-dir', stateDir]);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /ROOT_NEEDS_DRY_ACTIVATE/);
  });
});
