/**
 * Crash safety: the apply process is killed with SIGKILL at every step boundary of apply and activation, as a
 * power cut would. After the crash, recovery must leave the sandbox root byte for byte on the old or on the new
 * generation, never in between, and the next reconcile must converge to the new one.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CLI } from '../helpers/paths.js';
import { commitEdit, exampleGitRepo } from '../helpers/git-repo.js';
import { writeSecretsDir } from '../helpers/cli.js';

type Snapshot = Map<string, string>;

/** Every file under the root with its mode and content. */
async function snapshot(root: string): Promise<Snapshot> {
  const files = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const mode = ((await stat(path)).mode & 0o777).toString(8);
    files.set(relative(root, path), `${mode}\n${await readFile(path, 'utf8')}`);
  }
  return files;
}

function same(a: Snapshot, b: Snapshot): boolean {
  return a.size === b.size && [...a].every(([path, content]) => b.get(path) === content);
}

describe('crash safety: SIGKILL at every step boundary', function () {
  this.timeout(600_000);
  const cleanup: string[] = [];
  let repo: string;
  let secretsDir: string;
  let commitA: string;
  let commitB: string;
  let oldRoot: Snapshot;
  let newRoot: Snapshot;
  let points: string[];

  const run = (args: string[], env: Record<string, string> = {}) =>
    execa(process.execPath, [CLI, ...args], { reject: false, env, timeout: 60_000 });
  const applyArgs = (ref: string, root: string, state: string) => [
    'apply', '--repo', repo, '--ref', ref, '--host', 'lod-prod', '--root', root, '--state-dir', state,
    '--secrets-dir', secretsDir, '--dry-activate', '--quiet',
  ];
  const fresh = async () => {
    const root = await mkdtemp(join(tmpdir(), 'edge-crash-root-'));
    const state = await mkdtemp(join(tmpdir(), 'edge-crash-state-'));
    cleanup.push(root, state);
    const first = await run(applyArgs(commitA, root, state));
    assert.equal(first.exitCode, 0, String(first.stderr));
    return { root, state };
  };

  before(async () => {
    secretsDir = await writeSecretsDir();
    repo = await exampleGitRepo();
    cleanup.push(secretsDir, repo);
    commitA = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
    // B updates an env file and a unit, removes a timer, and changes the firewall: every kind of step.
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 7'));
    await commitEdit(repo, 'roles/lod/templates/lod.service.hbs', (text) => text.replace('RestartSec=2', 'RestartSec=3'));
    await commitEdit(repo, 'roles/lod/role.yaml', (text) =>
      text.replace(/ {2}- kind: systemd-unit\n {4}name: lod-backup\.timer\n {4}template: lod-backup\.timer\.hbs\n/, '').replace('from: 100.64.0.10', 'from: 100.64.0.11'),
    );
    commitB = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();

    const reference = await fresh();
    oldRoot = await snapshot(reference.root);
    const log = join(reference.state, 'crash-points.log');
    const second = await run(applyArgs(commitB, reference.root, reference.state), { EDGE_CRASH_LOG: log });
    assert.equal(second.exitCode, 0, String(second.stderr));
    newRoot = await snapshot(reference.root);
    points = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  });

  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('passes every kind of boundary: backups, journal, each file, activation, firewall, health', () => {
    assert.ok(!same(oldRoot, newRoot), 'commit B must change the host');
    for (const expected of ['apply:generation', 'apply:backups', 'apply:journal', 'apply:deactivated', 'apply:op:0', 'apply:done', 'activate:daemon-reload', 'activate:restart', 'activate:firewall-armed', 'activate:firewall', 'health:checked', 'record:committed']) {
      assert.ok(points.includes(expected), `no boundary ${expected} in ${points.join(', ')}`);
    }
    assert.ok(points.filter((point) => point.startsWith('apply:op:')).length >= 4);
  });

  it('recovers to exactly the old or the new generation from a kill at each boundary, then converges', async function () {
    this.timeout(600_000);
    const seen = new Map<string, string>();
    for (const point of points) {
      const { root, state } = await fresh();
      const crashed = await run(applyArgs(commitB, root, state), { EDGE_CRASH_AT: point });
      assert.equal(crashed.signal, 'SIGKILL', `${point}: the run was not killed (exit ${crashed.exitCode})`);
      const recovered = await run(['recover', '--host', 'lod-prod', '--root', root, '--state-dir', state, '--dry-activate', '--quiet']);
      assert.equal(recovered.exitCode, 0, `${point}: ${String(recovered.stderr)}`);
      const now = await snapshot(root);
      const on = same(now, oldRoot) ? 'old' : same(now, newRoot) ? 'new' : 'torn';
      assert.notEqual(on, 'torn', `${point}: after recovery the root is neither the old nor the new generation`);
      seen.set(point, on);
      const next = await run(applyArgs(commitB, root, state));
      assert.equal(next.exitCode, 0, `${point}: ${String(next.stderr)}`);
      assert.ok(same(await snapshot(root), newRoot), `${point}: the next reconcile did not converge`);
    }
    assert.equal(seen.size, points.length);
  });
});
