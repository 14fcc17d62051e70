/**
 * Crash safety: the apply of B over A is killed with SIGKILL at every step boundary of apply, activation and
 * record, as a power cut would. After the crash, recovery must leave the sandbox root (every file and directory,
 * with modes) on exactly the old or the new generation, and the status must name the generation the root is on.
 * Then a DIFFERENT revision C is applied: it must end byte for byte where C ends from that generation with no
 * crash at all, which only happens when the next run plans against the generation that is really live.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CLI } from '../helpers/paths.js';
import { commitEdit, exampleGitRepo } from '../helpers/git-repo.js';
import { writeSecretsDir } from '../helpers/cli.js';
import { exampleAppArgs } from '../helpers/app-repos.js';

type Snapshot = Map<string, string>;

/** Every file, directory and symlink under the root with its type, mode and content. */
async function snapshot(root: string): Promise<Snapshot> {
  const entries = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const stat = await lstat(path);
    const mode = (stat.mode & 0o7777).toString(8);
    const what = stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? `link ${await readlink(path)}` : `file\n${await readFile(path, 'utf8')}`;
    entries.set(relative(root, path), `${mode} ${what}`);
  }
  return entries;
}

/** The entries of `actual` that differ from `expected`, for a readable failure. */
function differences(actual: Snapshot, expected: Snapshot): string[] {
  const paths = new Set([...actual.keys(), ...expected.keys()]);
  return [...paths].filter((path) => actual.get(path) !== expected.get(path)).sort();
}

/** Runs `task` over `items` with at most `width` at a time. */
async function pool<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

interface Status {
  lastApplied?: { revision: string; generation: number };
}

describe('crash safety: SIGKILL at every step boundary', function () {
  this.timeout(900_000);
  const cleanup: string[] = [];
  let repo: string;
  let secretsDir: string;
  let template: { root: string; state: string };
  const commits: Record<'A' | 'B' | 'C', string> = { A: '', B: '', C: '' };
  const roots: Record<'A' | 'B' | 'AC' | 'ABC', Snapshot> = { A: new Map(), B: new Map(), AC: new Map(), ABC: new Map() };
  let points: string[];
  /** Maps the example's app repos to local ones. */
  let appArgs: string[];

  const run = (args: string[], env: Record<string, string> = {}) =>
    execa(process.execPath, [CLI, ...args], { reject: false, env, timeout: 120_000 });
  const apply = (ref: string, at: { root: string; state: string }, env: Record<string, string> = {}) =>
    run(['apply', '--repo', repo, '--ref', ref, '--host', 'lod-prod', '--root', at.root, '--state-dir', at.state, '--secrets-dir', secretsDir, ...appArgs, '--dry-activate', '--quiet'], env);
  const status = async (state: string) => JSON.parse(await readFile(join(state, 'status.json'), 'utf8')) as Status;
  /** A copy of the host with A applied (one real apply, copied for every boundary). */
  const onA = async () => {
    const root = await mkdtemp(join(tmpdir(), 'edge-crash-root-'));
    const state = await mkdtemp(join(tmpdir(), 'edge-crash-state-'));
    cleanup.push(root, state);
    await execa('cp', ['-a', `${template.root}/.`, root]);
    await execa('cp', ['-a', `${template.state}/.`, state]);
    return { root, state };
  };

  before(async () => {
    secretsDir = await writeSecretsDir();
    appArgs = await exampleAppArgs();
    repo = await exampleGitRepo();
    cleanup.push(secretsDir, repo);
    commits.A = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
    // B updates an env file and a unit, removes a timer, adds a file in a new directory, and changes the firewall.
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 7'));
    await commitEdit(repo, 'roles/lod/templates/lod.service.hbs', (text) => text.replace('RestartSec=2', 'RestartSec=3'));
    await commitEdit(repo, 'roles/lod/role.yaml', (text) =>
      text
        .replace(/ {2}- kind: systemd-unit\n {4}name: lod-backup\.timer\n {4}template: lod-backup\.timer\.hbs\n/, '')
        .replace('from: 100.64.0.10', 'from: 100.64.0.11')
        .replace('health:\n', '  - kind: file\n    name: lod-sysctl\n    target: /etc/sysctl.d/60-lod.conf\n    content: "net.core.somaxconn = 1024\\n"\nhealth:\n'),
    );
    commits.B = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
    // C removes what B added and changes the env file again: applied over the wrong inventory, B's file would stay.
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 7', 'workers: 9'));
    await commitEdit(repo, 'roles/lod/role.yaml', (text) => text.replace(/ {2}- kind: file\n {4}name: lod-sysctl\n.*\n.*\n/, ''));
    commits.C = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();

    const root = await mkdtemp(join(tmpdir(), 'edge-crash-root-'));
    const state = await mkdtemp(join(tmpdir(), 'edge-crash-state-'));
    cleanup.push(root, state);
    template = { root, state };
    const first = await apply(commits.A, template);
    assert.equal(first.exitCode, 0, String(first.stderr));
    roots.A = await snapshot(root);

    const viaB = await onA();
    const log = join(tmpdir(), `edge-crash-points-${process.pid}.log`);
    cleanup.push(log);
    const second = await apply(commits.B, viaB, { EDGE_CRASH_LOG: log });
    assert.equal(second.exitCode, 0, String(second.stderr));
    roots.B = await snapshot(viaB.root);
    points = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
    const third = await apply(commits.C, viaB);
    assert.equal(third.exitCode, 0, String(third.stderr));
    roots.ABC = await snapshot(viaB.root);

    const direct = await onA();
    const fourth = await apply(commits.C, direct);
    assert.equal(fourth.exitCode, 0, String(fourth.stderr));
    roots.AC = await snapshot(direct.root);
  });

  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('passes every kind of boundary: backups, journal, the staged files, each file, activation, firewall, health, record', () => {
    assert.notDeepEqual(differences(roots.A, roots.B), [], 'commit B must change the host');
    assert.ok(differences(roots.AC, roots.ABC).some((path) => path.startsWith('etc/sysctl.d')), 'B leaves a directory that C does not remove');
    for (const expected of ['apply:generation', 'apply:backups', 'apply:journal', 'apply:deactivated', 'apply:staged', 'apply:op:0', 'apply:done', 'activate:daemon-reload', 'activate:restart', 'activate:firewall-armed', 'activate:firewall', 'health:checked', 'record:good', 'record:committed']) {
      assert.ok(points.includes(expected), `no boundary ${expected} in ${points.join(', ')}`);
    }
    assert.ok(points.filter((point) => point.startsWith('apply:op:')).length >= 5);
  });

  it('recovers to exactly the old or the new generation from a kill at each boundary, names it, then applies the next revision', async () => {
    const seen = new Map<string, 'old' | 'new'>();
    await pool(points, 2, async (point) => {
      const host = await onA();
      const crashed = await apply(commits.B, host, { EDGE_CRASH_AT: point });
      assert.equal(crashed.signal, 'SIGKILL', `${point}: the run was not killed (exit ${crashed.exitCode})`);
      const recovered = await run(['recover', '--host', 'lod-prod', '--root', host.root, '--state-dir', host.state, '--dry-activate', '--quiet']);
      assert.equal(recovered.exitCode, 0, `${point}: ${String(recovered.stderr)}`);
      const now = await snapshot(host.root);
      const on = differences(now, roots.A).length === 0 ? 'old' : differences(now, roots.B).length === 0 ? 'new' : undefined;
      assert.ok(on, `${point}: after recovery the root is neither the old nor the new generation: ${differences(now, roots.B).join(', ')}`);
      seen.set(point, on);
      assert.equal((await status(host.state)).lastApplied?.revision, on === 'old' ? commits.A : commits.B, `${point}: the status does not name the live generation`);
      assert.ok(!existsSync(join(host.state, 'journal.json')) && !existsSync(join(host.state, 'txn')), `${point}: the transaction is still open`);

      const next = await apply(commits.C, host);
      assert.equal(next.exitCode, 0, `${point}: ${String(next.stderr)}`);
      const expected = on === 'old' ? roots.AC : roots.ABC;
      assert.deepEqual(differences(await snapshot(host.root), expected), [], `${point}: C over the ${on} generation did not end where it ends without a crash`);
      assert.equal((await status(host.state)).lastApplied?.revision, commits.C, `${point}: C is not named live`);
      await rm(host.root, { recursive: true, force: true });
      await rm(host.state, { recursive: true, force: true });
    });
    assert.equal(seen.size, points.length);
    assert.equal(seen.get('apply:generation'), 'old');
    assert.equal(seen.get('record:good'), 'new');
  });

  it('resolves a kill during the undo itself by undoing again, at each step of the undo', async () => {
    const steps = points.filter((point) => point.startsWith('apply:op:')).map((point) => point.replace('apply:', 'undo:'));
    await pool(steps, 2, async (step) => {
      const host = await onA();
      const crashed = await apply(commits.B, host, { EDGE_CRASH_AT: 'apply:done' });
      assert.equal(crashed.signal, 'SIGKILL');
      const recoverArgs = ['recover', '--host', 'lod-prod', '--root', host.root, '--state-dir', host.state, '--dry-activate', '--quiet'];
      const killed = await run(recoverArgs, { EDGE_CRASH_AT: step });
      assert.equal(killed.signal, 'SIGKILL', `${step}: the undo was not killed (exit ${killed.exitCode})`);
      const recovered = await run(recoverArgs);
      assert.equal(recovered.exitCode, 0, `${step}: ${String(recovered.stderr)}`);
      assert.deepEqual(differences(await snapshot(host.root), roots.A), [], `${step}: the second undo did not end on the old generation`);
      assert.equal((await status(host.state)).lastApplied?.revision, commits.A);
      await rm(host.root, { recursive: true, force: true });
      await rm(host.state, { recursive: true, force: true });
    });
  });
});
