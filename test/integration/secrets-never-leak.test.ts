/**
 * Secret values never leave the env files they are rendered into: not into check or plan output (human or JSON),
 * nor into the errors of broken revisions, whatever the way they break, nor into the logs of `apply` (JSON with
 * journald priorities, and pretty) of a good and of a broken revision, stage lines and commands included.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { copyExampleRepo, EXAMPLE_SECRETS, runCli, writeSecretsDir, type CliResult } from '../helpers/cli.js';
import { EXAMPLE_REPO } from '../helpers/paths.js';
import { exampleAppArgs } from '../helpers/app-repos.js';

const HOSTS = ['caddy-router', 'lod-prod', 'lod-standby', 'model-gateway'];

function assertNoSecret(result: CliResult, what: string): void {
  const output = result.stdout + result.stderr;
  for (const [name, value] of Object.entries(EXAMPLE_SECRETS)) {
    assert.ok(!output.includes(value), `${what}: the value of ${name} leaked:\n${output}`);
  }
}

describe('secret values never leak', function () {
  this.timeout(120_000);
  const cleanup: string[] = [];
  let secretsDir: string;

  before(async () => {
    secretsDir = await writeSecretsDir();
    cleanup.push(secretsDir);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('check, human and JSON', async () => {
    for (const args of [[], ['--json']]) {
      const result = await runCli(['check', '--repo', EXAMPLE_REPO, '--secrets-dir', secretsDir, ...args]);
      assert.equal(result.exitCode, 0, result.stderr);
      assertNoSecret(result, `check ${args.join(' ')}`);
    }
  });

  it('plan of every host into an empty root and into a root holding other secret values', async () => {
    for (const host of HOSTS) {
      const empty = await mkdtemp(join(tmpdir(), 'edge-root-'));
      const stale = await mkdtemp(join(tmpdir(), 'edge-root-'));
      cleanup.push(empty, stale);
      const env = join(stale, 'etc/edge-reconciler/env/lod.env');
      await mkdir(dirname(env), { recursive: true });
      await writeFile(env, `DATABASE_URL=postgres://lod:${EXAMPLE_SECRETS.LOD_DB_PASSWORD}-old@db/lod\n`, { mode: 0o600 });
      for (const root of [empty, stale]) {
        for (const json of [[], ['--json']]) {
          const result = await runCli(['plan', '--repo', EXAMPLE_REPO, '--host', host, '--root', root, '--secrets-dir', secretsDir, ...json]);
          assert.equal(result.exitCode, 2, result.stderr);
          assertNoSecret(result, `plan ${host}`);
        }
      }
    }
  });

  const BREAKS: [string, string, (text: string) => string][] = [
    ['a line that is no assignment after a secret', 'roles/lod/templates/lod.env.hbs', (t) => `${t}{{secret "LOD_DB_PASSWORD"}}\n`],
    ['a key set twice to secrets', 'roles/lod/templates/lod.env.hbs', (t) => `${t}SESSION_SECRET={{secret "LOD_DB_PASSWORD"}}\n`],
    ['a bad key holding a secret', 'roles/model-gateway/templates/model-gateway.env.hbs', (t) => `${t}BAD-KEY={{secret "MODEL_GATEWAY_API_KEY"}}\n`],
    ['an unterminated quote around a secret', 'roles/lod/templates/lod.env.hbs', (t) => `${t}QUOTED="{{secret "LOD_SESSION_SECRET"}}\n`],
  ];
  it('the logs of apply, JSON and pretty, with stage lines and whole commands, for a good and a broken revision', async () => {
    const broken = await copyExampleRepo();
    cleanup.push(broken);
    const env = join(broken, 'roles/lod/templates/lod.env.hbs');
    await writeFile(env, `${await readFile(env, 'utf8')}SESSION_SECRET={{secret "LOD_DB_PASSWORD"}}\n`);
    await execa('git', ['-C', broken, 'init', '-q', '-b', 'release']);
    await execa('git', ['-C', broken, 'add', '-A']);
    await execa('git', ['-C', broken, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'broken']);
    for (const [repo, exit] of [[EXAMPLE_REPO, 0], [broken, 1]] as const) {
      for (const format of ['json', 'pretty']) {
        const root = await mkdtemp(join(tmpdir(), 'edge-root-'));
        cleanup.push(root);
        const result = await runCli(
          ['apply', '--repo', repo, '--host', 'lod-prod', '--root', root, '--state-dir', join(root, 'state'), '--secrets-dir', secretsDir, '--dry-activate', '--log-format', format, ...(await exampleAppArgs())],
          { env: { JOURNAL_STREAM: '' } },
        );
        assert.equal(result.exitCode, exit, result.stderr);
        assert.match(result.stderr, /stage (fetch|load|render)/, `${format}: the stage lines are there`);
        assertNoSecret(result, `apply ${format} of ${repo === broken ? 'a broken' : 'the example'} revision`);
      }
    }
  });

  for (const [what, file, change] of BREAKS) {
    it(`the errors of ${what}`, async () => {
      const repo = await copyExampleRepo();
      cleanup.push(repo);
      const path = join(repo, file);
      await writeFile(path, change(await readFile(path, 'utf8')));
      const check = await runCli(['check', '--repo', repo, '--secrets-dir', secretsDir]);
      assert.equal(check.exitCode, 1, check.stdout);
      assertNoSecret(check, `check with ${what}`);
      const root = await mkdtemp(join(tmpdir(), 'edge-root-'));
      cleanup.push(root);
      const host = file.includes('model-gateway') ? 'model-gateway' : 'lod-prod';
      const plan = await runCli(['plan', '--repo', repo, '--host', host, '--root', root, '--secrets-dir', secretsDir, '--json']);
      assert.equal(plan.exitCode, 1, plan.stdout);
      assertNoSecret(plan, `plan with ${what}`);
    });
  }
});
