/**
 * Crash safety of the symlink switch: the apply of B (app lod bumped from v1 to v2, and its unit changed) over A is
 * killed with SIGKILL at every step boundary, the build of v2 and the switch of `current` included. After the
 * crash, recovery must leave the config files and the `current` link exactly as A or as B left them (a release dir
 * that is not live is harmless and may stay), the status must name that generation, the link must lead to a
 * complete release, and the next revision C (v3) must then apply cleanly. A kill during the undo of the switch is
 * resolved by undoing again.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { CLI } from '../helpers/paths.js';
import { appRepo, type AppRepo } from '../helpers/app-release-repo.js';
import { git } from '../helpers/git-repo.js';
import { TINY_HOST, writeTinyRepo } from '../helpers/tiny-repo.js';

type Snapshot = Map<string, string>;

/** Every file, directory and symlink under the root but inside release dirs (those may stay when not live). */
async function snapshot(root: string): Promise<Snapshot> {
  const entries = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const rel = relative(root, path);
    if (/^srv\/apps\/lod\/releases\/./.test(rel)) continue;
    const stat = await lstat(path);
    const what = stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? `link ${await readlink(path)}` : `file ${(stat.mode & 0o7777).toString(8)}\n${await readFile(path, 'utf8')}`;
    entries.set(rel, what);
  }
  return entries;
}

function differences(actual: Snapshot, expected: Snapshot): string[] {
  return [...new Set([...actual.keys(), ...expected.keys()])].filter((path) => actual.get(path) !== expected.get(path)).sort();
}

async function pool<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

const UNIT = (version: string) => `[Unit]\nDescription=lod ${version}\n\n[Service]\nExecStart=/usr/bin/python3 /srv/apps/lod/current/server.py\n\n[Install]\nWantedBy=multi-user.target\n`;

describe('crash safety of the app release switch: SIGKILL at every step boundary', function () {
  this.timeout(900_000);
  const cleanup: string[] = [];
  let repo: string;
  let app: AppRepo;
  let template: { root: string; state: string };
  const commits: Record<'A' | 'B' | 'C', string> = { A: '', B: '', C: '' };
  const roots: Record<'A' | 'B', Snapshot> = { A: new Map(), B: new Map() };
  let points: string[];

  const run = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, [CLI, ...args], { reject: false, env, timeout: 120_000 });
  const hostArgs = (at: { root: string; state: string }) => ['--host', TINY_HOST, '--root', at.root, '--state-dir', at.state, '--dry-activate', '--quiet'];
  const apply = (ref: string, at: { root: string; state: string }, env: Record<string, string> = {}) =>
    run(['apply', '--repo', repo, '--ref', ref, ...hostArgs(at), '--app-instead-of', `https://git.example.com/edge/lod.git=${app.dir}`], env);
  const lastApplied = async (state: string) => (JSON.parse(await readFile(join(state, 'status.json'), 'utf8')) as { lastApplied?: { revision: string } }).lastApplied?.revision;
  const appsOf = async (state: string) => (JSON.parse(await readFile(join(state, 'status.json'), 'utf8')) as { apps?: { sha: string }[] }).apps ?? [];
  const onA = async () => {
    const root = await mkdtemp(join(tmpdir(), 'edge-crash-app-root-'));
    const state = await mkdtemp(join(tmpdir(), 'edge-crash-app-state-'));
    await execa('cp', ['-a', `${template.root}/.`, root]);
    await execa('cp', ['-a', `${template.state}/.`, state]);
    return { root, state };
  };
  const desire = async (version: string, sha: string) => {
    const role = {
      resources: [
        { kind: 'systemd-unit', name: 'lod.service', content: UNIT(version) },
        { kind: 'app', name: 'lod', repo: 'https://git.example.com/edge/lod.git', rev: sha, user: 'nobody', shared: ['data'], build: { command: ['sh', '-c', 'echo built > BUILT'] }, units: ['lod.service'] },
      ],
    };
    await writeFile(join(repo, 'roles/app/role.yaml'), stringify(role));
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', `lod ${version}`);
    return git(repo, 'rev-parse', 'HEAD');
  };
  /** The live link leads to a complete release of the expected version. */
  const servesVersion = async (root: string) => {
    const target = await readlink(join(root, 'srv/apps/lod/current'));
    assert.ok(existsSync(join(root, 'srv/apps/lod', target, '.edge-release.json')), `current → ${target} is no complete release`);
    return (await readFile(join(root, 'srv/apps/lod/current/VERSION'), 'utf8')).trim();
  };

  before(async () => {
    repo = await writeTinyRepo({});
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'config', 'user.email', 'test@example.com');
    await git(repo, 'config', 'user.name', 'test');
    app = await appRepo();
    await git(app.dir, 'config', 'user.email', 'test@example.com');
    await git(app.dir, 'config', 'user.name', 'test');
    cleanup.push(repo, app.dir);
    commits.A = await desire('v1', await app.release('v1'));
    commits.B = await desire('v2', await app.release('v2'));
    commits.C = await desire('v3', await app.release('v3'));

    const root = await mkdtemp(join(tmpdir(), 'edge-crash-app-root-'));
    const state = await mkdtemp(join(tmpdir(), 'edge-crash-app-state-'));
    cleanup.push(root, state);
    template = { root, state };
    const first = await apply(commits.A, template);
    assert.equal(first.exitCode, 0, String(first.stderr));
    roots.A = await snapshot(root);

    const viaB = await onA();
    cleanup.push(viaB.root, viaB.state);
    const log = join(tmpdir(), `edge-crash-app-points-${process.pid}.log`);
    cleanup.push(log);
    const second = await apply(commits.B, viaB, { EDGE_CRASH_LOG: log });
    assert.equal(second.exitCode, 0, String(second.stderr));
    roots.B = await snapshot(viaB.root);
    points = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  });

  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('passes the build, the link switch and every other boundary', () => {
    assert.ok(differences(roots.A, roots.B).includes('srv/apps/lod/current'), 'B must switch the link');
    for (const expected of ['prepare:release', 'apply:generation', 'apply:journal', 'link:created', 'apply:done', 'activate:restart', 'record:good']) {
      assert.ok(points.includes(expected), `no boundary ${expected} in ${points.join(', ')}`);
    }
  });

  it('recovers to exactly the old or the new release from a kill at each boundary, then applies the next one', async () => {
    const seen = new Map<string, string>();
    await pool(points, 2, async (point) => {
      const host = await onA();
      try {
        const crashed = await apply(commits.B, host, { EDGE_CRASH_AT: point });
        assert.equal(crashed.signal, 'SIGKILL', `${point}: the run was not killed (exit ${crashed.exitCode})`);
        const recovered = await run(['recover', ...hostArgs(host)]);
        assert.equal(recovered.exitCode, 0, `${point}: ${String(recovered.stderr)}`);
        const now = await snapshot(host.root);
        const on = differences(now, roots.A).length === 0 ? 'old' : differences(now, roots.B).length === 0 ? 'new' : undefined;
        assert.ok(on, `${point}: after recovery the root is neither A nor B: ${differences(now, roots.B).join(', ')}`);
        seen.set(point, on);
        assert.equal(await servesVersion(host.root), on === 'old' ? 'v1' : 'v2', `${point}: the link leads elsewhere`);
        assert.equal(await lastApplied(host.state), on === 'old' ? commits.A : commits.B, `${point}: the status does not name the live generation`);
        const live = (await readlink(join(host.root, 'srv/apps/lod/current'))).replace('releases/', '');
        assert.equal((await appsOf(host.state))[0]?.sha, live, `${point}: the status does not name the live release`);
        const next = await apply(commits.C, host);
        assert.equal(next.exitCode, 0, `${point}: ${String(next.stderr)}`);
        assert.equal(await servesVersion(host.root), 'v3', `${point}: C did not go live`);
        const leftovers = (await readdir(join(host.root, 'srv/apps/lod/releases'))).filter((name) => name.startsWith('.'));
        assert.deepEqual(leftovers, [], `${point}: a half-built release was left`);
      } finally {
        await rm(host.root, { recursive: true, force: true });
        await rm(host.state, { recursive: true, force: true });
      }
    });
    assert.equal(seen.size, points.length);
    assert.equal(seen.get('link:created'), 'old');
    assert.equal(seen.get('record:good'), 'new');
  });

  it('resolves a kill during the undo of the switch by undoing again', async () => {
    const steps = points.filter((point) => point.startsWith('apply:op:')).map((point) => point.replace('apply:', 'undo:'));
    await pool([...steps, 'link:created'], 2, async (step) => {
      const host = await onA();
      try {
        const crashed = await apply(commits.B, host, { EDGE_CRASH_AT: 'apply:done' });
        assert.equal(crashed.signal, 'SIGKILL');
        const killed = await run(['recover', ...hostArgs(host)], { EDGE_CRASH_AT: step });
        assert.equal(killed.signal, 'SIGKILL', `${step}: the undo was not killed (exit ${killed.exitCode})`);
        const recovered = await run(['recover', ...hostArgs(host)]);
        assert.equal(recovered.exitCode, 0, `${step}: ${String(recovered.stderr)}`);
        assert.deepEqual(differences(await snapshot(host.root), roots.A), [], `${step}: the second undo did not end on A`);
        assert.equal(await servesVersion(host.root), 'v1');
      } finally {
        await rm(host.root, { recursive: true, force: true });
        await rm(host.state, { recursive: true, force: true });
      }
    });
  });
});
