/**
 * App builds through the CLI, as an operator runs them: `apply --app-instead-of` maps the app's URL to a local
 * repo; a build is confined (it cannot write its shared dirs or anything outside its release), is killed at its
 * timeout, a secret it prints never reaches the output or the status, a release already built for the same commit
 * and build is reused rather than rebuilt, and `status` and `history` name each app's release.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { appRepo, type AppRepo } from '../helpers/app-release-repo.js';
import { runCli, writeSecretsDir } from '../helpers/cli.js';
import { git } from '../helpers/git-repo.js';
import { TINY_HOST, writeTinyRepo } from '../helpers/tiny-repo.js';

const SECRET = 'tok-Qx77AppBuildLeakCheck';
const UNIT = '[Unit]\nDescription=lod\n\n[Service]\nExecStart=/usr/bin/python3 /srv/apps/lod/current/server.py\n\n[Install]\nWantedBy=multi-user.target\n';

describe('app builds through the CLI', function () {
  this.timeout(300_000);
  const cleanup: string[] = [];
  let repo: string;
  let app: AppRepo;
  let root: string;
  let state: string;
  let secrets: string;

  const desire = async (spec: Record<string, unknown>, unit = UNIT) => {
    const role = {
      resources: [
        { kind: 'systemd-unit', name: 'lod.service', content: unit },
        { kind: 'app', name: 'lod', repo: 'https://git.example.com/edge/lod.git', user: 'nobody', shared: ['data'], units: ['lod.service'], ...spec },
      ],
    };
    await writeFile(join(repo, 'roles/app/role.yaml'), stringify(role));
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'desire');
  };
  const apply = () =>
    runCli(['apply', '--repo', repo, '--host', TINY_HOST, '--root', root, '--state-dir', state, '--secrets-dir', secrets, '--dry-activate', '--quiet', '--json',
      '--app-instead-of', `https://git.example.com/edge/lod.git=${app.dir}`]);
  const current = () => readlink(join(root, 'srv/apps/lod/current'));

  beforeEach(async () => {
    repo = await writeTinyRepo({});
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'config', 'user.email', 'test@example.com');
    await git(repo, 'config', 'user.name', 'test');
    app = await appRepo();
    await git(app.dir, 'config', 'user.email', 'test@example.com');
    await git(app.dir, 'config', 'user.name', 'test');
    root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    state = await mkdtemp(join(tmpdir(), 'edge-state-'));
    secrets = await writeSecretsDir({ LOD_TOKEN: SECRET });
    cleanup.push(repo, app.dir, root, state, secrets);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('maps the app URL with --app-instead-of, reuses a built release, and shows it in status and history', async () => {
    const v1 = await app.release('v1', { files: { 'build.sh': '#!/bin/sh\ndate +%s%N > BUILT\n' } });
    await desire({ rev: v1, build: { command: ['./build.sh'] } });
    const first = await apply();
    assert.equal(first.exitCode, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as { result: string; releases: { app: string; sha: string }[] };
    assert.deepEqual(summary.releases.map(({ app: name, sha }) => [name, sha]), [['lod', v1]]);
    const built = await readFile(join(root, 'srv/apps/lod/current/BUILT'), 'utf8');

    await desire({ rev: v1, build: { command: ['./build.sh'] } }, UNIT.replace('Description=lod', 'Description=lod app'));
    const second = await apply();
    assert.equal(second.exitCode, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).result, 'applied');
    assert.equal(await readFile(join(root, 'srv/apps/lod/current/BUILT'), 'utf8'), built, 'the same commit and build are not built again');

    const status = await runCli(['status', '--state-dir', state, '--host', TINY_HOST]);
    assert.match(status.stdout, new RegExp(`app lod: +${v1.slice(0, 12)} built .* in [0-9.]+ s`));
    const history = await runCli(['history', '--state-dir', state]);
    assert.match(history.stdout, new RegExp(`lod@${v1.slice(0, 12)}`));
    const json = JSON.parse((await runCli(['status', '--state-dir', state, '--host', TINY_HOST, '--json'])).stdout) as { apps: { app: string; sha: string }[] };
    assert.deepEqual(json.apps.map(({ app: name, sha }) => [name, sha]), [['lod', v1]]);
  });

  it('plans an app release: the link to switch, the unit to restart, and what prepare will fetch and build', async () => {
    const v1 = await app.release('v1');
    await desire({ rev: v1 });
    const plan = await runCli(['plan', '--repo', repo, '--host', TINY_HOST, '--root', root]);
    assert.equal(plan.exitCode, 2, plan.stderr);
    assert.match(plan.stdout, new RegExp(`\\+ /srv/apps/lod/current {2}app app/app/lod\\n {4}\\+> releases/${v1}`));
    assert.match(plan.stdout, new RegExp(`app releases:\\n {2}app lod: commit ${v1.slice(0, 12)} of https://git.example.com/edge/lod.git is fetched and built when applied`));
    const applied = JSON.parse((await apply()).stdout) as { notes: string[] };
    assert.deepEqual(applied.notes, [`app lod: ${v1.slice(0, 12)} exported and built in 0 s`]);
  });

  it('confines the build: its shared dirs and everything outside its release are read-only', async () => {
    const v1 = await app.release('v1');
    await desire({ rev: v1 });
    assert.equal((await apply()).exitCode, 0);
    for (const [version, attempt] of [['v2', 'echo x > data/leak'], ['v3', `echo x > ${root}/srv/apps/lod/escaped`], ['v4', 'echo x > /tmp/edge-build-escape']] as const) {
      const sha = await app.release(version);
      await desire({ rev: sha, build: { command: ['sh', '-c', attempt] } });
      const outcome = await apply();
      assert.equal(outcome.exitCode, 1, `${attempt}: ${outcome.stdout}`);
      const error = (JSON.parse(outcome.stdout) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'APP_BUILD_FAILED', attempt);
      assert.match(error.message, /read-only file system|permission denied/i, attempt);
      assert.equal(await current(), `releases/${v1}`);
    }
  });

  it('kills a build at its timeout, and never shows a secret the build prints', async () => {
    const v1 = await app.release('v1');
    await desire({ rev: v1 });
    assert.equal((await apply()).exitCode, 0);
    const v2 = await app.release('v2');
    await desire({ rev: v2, build: { command: ['sleep', '60'], timeoutSeconds: 1 } });
    const slow = await apply();
    assert.equal(slow.exitCode, 1);
    assert.match(JSON.parse(slow.stdout).error.message, new RegExp(`app lod: build of ${v2.slice(0, 12)} timed out after 1 s`));

    const v3 = await app.release('v3', { files: { 'build.sh': `#!/bin/sh\necho "using token ${SECRET}" >&2\nexit 2\n` } });
    await desire({ rev: v3, build: { command: ['./build.sh'] } });
    const leaky = await apply();
    assert.equal(leaky.exitCode, 1);
    assert.match(leaky.stdout, /APP_BUILD_FAILED/);
    assert.match(leaky.stdout, /using token/);
    const status = await readFile(join(state, 'status.json'), 'utf8');
    for (const [where, text] of [['stdout', leaky.stdout], ['stderr', leaky.stderr], ['status.json', status]]) {
      assert.ok(!text.includes(SECRET), `the secret leaked into ${where}`);
    }
    assert.equal(await current(), `releases/${v1}`);
  });
});
