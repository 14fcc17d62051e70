/**
 * Recovery never undoes through a symlinked directory: a run killed in the middle of its transaction, then a
 * managed directory replaced by a symlink to a place outside the root, makes `recover` refuse with PATH_SYMLINK
 * naming the link (the journal stays, nothing outside changes); with the directory put back, it recovers.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { cp, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/paths.js';
import { exampleAppArgs } from '../helpers/app-repos.js';
import { commitEdit, exampleGitRepo, head } from '../helpers/git-repo.js';
import { writeSecretsDir } from '../helpers/cli.js';
import { TEMP_PREFIX } from '../../reconciler/host/host.js';

async function snapshot(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return Promise.all(
    entries.map(async (entry) => {
      const path = join(entry.parentPath, entry.name);
      const info = await stat(path);
      return `${path} ${(info.mode & 0o7777).toString(8)} ${entry.isFile() ? await readFile(path, 'utf8') : ''}`;
    }),
  ).then((lines) => lines.sort());
}

describe('recovery with a managed directory replaced by a symlink', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  let repo: string;
  let secretsDir: string;
  let root: string;
  let state: string;

  const run = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, [CLI, ...args], { reject: false, env, timeout: 60_000 });
  const host = () => ['--host', 'lod-prod', '--root', root, '--state-dir', state, '--dry-activate', '--quiet'];
  const apply = async (ref: string, env: Record<string, string> = {}) =>
    run(['apply', '--repo', repo, '--ref', ref, ...host(), '--secrets-dir', secretsDir, ...(await exampleAppArgs())], env);

  before(async () => {
    secretsDir = await writeSecretsDir();
    repo = await exampleGitRepo();
    cleanup.push(secretsDir, repo);
  });
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-undo-root-'));
    state = await mkdtemp(join(tmpdir(), 'edge-undo-state-'));
    cleanup.push(root, state);
    const first = await apply(await head(repo));
    assert.equal(first.exitCode, 0, String(first.stderr));
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('refuses to undo through the symlink, changes nothing outside, and recovers once the directory is back', async () => {
    await commitEdit(repo, 'roles/lod/templates/lod.service.hbs', (text) => text.replace('RestartSec=2', 'RestartSec=3'));
    await commitEdit(repo, 'roles/lod/role.yaml', (text) => text.replace(/ {2}- kind: systemd-unit\n {4}name: lod-backup\.timer\n {4}template: lod-backup\.timer\.hbs\n/, ''));
    const crashed = await apply(await head(repo), { EDGE_CRASH_AT: 'apply:done' });
    assert.equal(crashed.signal, 'SIGKILL', String(crashed.stderr));

    // The unit dir moves out of the root and a symlink takes its place; outside, files named like the managed ones.
    const units = join(root, 'etc/systemd/system');
    const outside = await mkdtemp(join(tmpdir(), 'edge-undo-outside-'));
    cleanup.push(outside);
    await cp(units, join(outside, 'system'), { recursive: true });
    await writeFile(join(outside, 'system', 'lod-backup.timer'), 'outside, not managed\n', { mode: 0o600 });
    await writeFile(join(outside, 'system', `${TEMP_PREFIX}lod.service.0a1b2c3d`), 'outside temp\n', { mode: 0o600 });
    const real = `${units}.real`;
    await rename(units, real);
    await symlink(join(outside, 'system'), units);
    const before = await snapshot(outside);

    const refused = await run(['recover', ...host()]);
    assert.equal(refused.exitCode, 1, String(refused.stdout));
    assert.match(String(refused.stderr), /\[PATH_SYMLINK\]/);
    assert.match(String(refused.stderr), /\/etc\/systemd\/system is a symlink/);
    assert.deepEqual(await snapshot(outside), before, 'recovery changed files outside the root');
    await stat(join(state, 'journal.json'));

    await rm(units);
    await rename(real, units);
    const recovered = await run(['recover', ...host()]);
    assert.equal(recovered.exitCode, 0, String(recovered.stderr));
    assert.match(String(recovered.stdout), /recovered generation 2: undone/);
    assert.match(await readFile(join(units, 'lod.service'), 'utf8'), /RestartSec=2/);
    await stat(join(units, 'lod-backup.timer'));
  });

  it('refuses in plan, naming the link, to read the live files through a symlinked directory', async () => {
    const units = join(root, 'etc/systemd/system');
    const outside = await mkdtemp(join(tmpdir(), 'edge-undo-outside-'));
    cleanup.push(outside);
    await cp(units, join(outside, 'system'), { recursive: true });
    const real = `${units}.real`;
    await rename(units, real);
    await symlink(join(outside, 'system'), units);
    const before = await snapshot(outside);
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace(/workers: \d+/, 'workers: 9'));
    const refused = await run(['apply', '--repo', repo, ...host(), '--secrets-dir', secretsDir, ...(await exampleAppArgs()), '--json']);
    assert.equal(refused.exitCode, 1, String(refused.stderr));
    const json = JSON.parse(String(refused.stdout)) as { error?: { code: string; stage: string; message: string } };
    assert.equal(json.error?.code, 'PATH_SYMLINK');
    assert.equal(json.error?.stage, 'plan');
    assert.match(json.error?.message ?? '', /\/etc\/systemd\/system is a symlink/);
    assert.deepEqual(await snapshot(outside), before);
    await rm(units);
    await rename(real, units);
  });
});
