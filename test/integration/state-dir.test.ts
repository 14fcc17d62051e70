/**
 * The state dir under faults: kills at chosen boundaries, damaged and missing state files, odd objects on the
 * host, leftovers of killed runs. Each case ends on a named generation or a named error with the way out, and the
 * live root stays as it was. Real CLI runs of real commits into sandbox roots (activation recorded).
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertStrace } from '../helpers/assertions.js';
import { CLI } from '../helpers/paths.js';
import { writeSecretsDir } from '../helpers/cli.js';
import { exampleAppArgs } from '../helpers/app-repos.js';
import { commitEdit, exampleGitRepo } from '../helpers/git-repo.js';
import { runTempPrefix } from '../../reconciler/host/run-temp.js';
import { StateStore } from '../../reconciler/state/state-store.js';

interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const TIMER = / {2}- kind: systemd-unit\n {4}name: lod-backup\.timer\n {4}template: lod-backup\.timer\.hbs\n/;

describe('the state dir under faults', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  let secretsDir: string;
  let repo: string;
  let root: string;
  let stateDir: string;

  const cli = async (args: string[], env: Record<string, string> = {}): Promise<Outcome & { signal?: string }> => {
    const result = await execa(process.execPath, [CLI, ...args], { reject: false, env, timeout: 120_000 });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr), signal: result.signal ?? undefined };
  };
  const hostArgs = () => ['--host', 'lod-prod', '--root', root, '--state-dir', stateDir, '--dry-activate', '--quiet'];
  const apply = async (env: Record<string, string> = {}, extra: string[] = []) =>
    cli(['apply', '--repo', repo, '--secrets-dir', secretsDir, ...hostArgs(), ...(await exampleAppArgs()), ...extra], env);
  const recover = () => cli(['recover', ...hostArgs()]);
  const status = async () => JSON.parse(await readFile(join(stateDir, 'status.json'), 'utf8')) as { lastApplied?: { generation: number; revision: string } };
  const results = async () => Object.fromEntries((await new StateStore(stateDir).history()).map((meta) => [meta.generation, meta.result]));
  const files = async (dir: string): Promise<Map<string, string>> => {
    const map = new Map<string, string>();
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      map.set(path, entry.isFile() ? await readFile(path, 'utf8') : 'dir');
    }
    return map;
  };

  before(async () => {
    secretsDir = await writeSecretsDir();
    cleanup.push(secretsDir);
  });
  beforeEach(async () => {
    repo = await exampleGitRepo();
    root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    cleanup.push(repo, root, stateDir);
    const first = await apply();
    assert.equal(first.exitCode, 0, first.stderr);
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  for (const [change, file, edit] of [
    ['only removes a file', 'roles/lod/role.yaml', (text: string) => text.replace(TIMER, '')],
    ['only changes a mode', 'roles/base/role.yaml', (text: string) => text.replace('    target: /etc/logrotate.d/edge-apps\n', '    target: /etc/logrotate.d/edge-apps\n    mode: "0600"\n')],
  ] as const) {
    it(`a kill before the journal of a change that ${change} leaves that generation interrupted, never good`, async () => {
      const before = await files(root);
      await commitEdit(repo, file, edit);
      const crashed = await apply({ EDGE_CRASH_AT: 'apply:generation' });
      assert.equal(crashed.signal, 'SIGKILL');
      const recovered = await recover();
      assert.equal(recovered.exitCode, 0, recovered.stderr);
      assert.match(recovered.stdout, /recovered generation 2: abandoned/);
      assert.deepEqual(await results(), { 1: 'good', 2: 'interrupted' });
      assert.equal((await status()).lastApplied?.generation, 1);
      assert.deepEqual(await files(root), before);
      const rollback = await cli(['rollback', ...hostArgs(), '--to', '2']);
      assert.equal(rollback.exitCode, 1);
      assert.match(rollback.stderr, /NO_ROLLBACK_TARGET/);
    });
  }

  it('stores a fresh copy of an unchanged file whose stored copy was damaged, instead of linking it', async () => {
    const stored = (n: number) => join(stateDir, 'generations', String(n), 'files/etc/systemd/system/lod.service');
    await writeFile(stored(1), 'damaged\n');
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    const second = await apply();
    assert.equal(second.exitCode, 0, second.stderr);
    const copies = await new StateStore(stateDir).generationFiles(2);
    assert.ok(copies.some((file) => file.path === '/etc/systemd/system/lod.service'));
    assert.notEqual((await stat(stored(2))).ino, (await stat(stored(1))).ino);
  });

  it('links an unchanged stored copy by its stat once it matched, and still reads and replaces one damaged since', async function () {
    await assertStrace();
    const stored = (n: number, path: string) => join(stateDir, 'generations', String(n), 'files', path);
    const unit = '/etc/systemd/system/lod.service';
    // Generation 2 reads each copy of generation 1 once and records its stat.
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    assert.equal((await apply()).exitCode, 0);
    // Damaged in place, same size: only its mtime tells.
    const size = (await stat(stored(2, unit))).size;
    await writeFile(stored(2, unit), 'x'.repeat(size));
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 6', 'workers: 8'));
    const trace = `${stateDir}.strace`;
    cleanup.push(trace);
    const args = ['apply', '--repo', repo, '--secrets-dir', secretsDir, ...hostArgs(), ...(await exampleAppArgs())];
    const traced = await execa('strace', ['-f', '-e', 'trace=openat', '-o', trace, process.execPath, CLI, ...args], { reject: false, timeout: 120_000 });
    assert.equal(traced.exitCode, 0, String(traced.stderr));
    const prefix = join(stateDir, 'generations', '2', 'files');
    const opened = new Set([...(await readFile(trace, 'utf8')).matchAll(/openat\([^"]*"([^"]+)"/g)].map(([, path]) => path ?? '').filter((path) => path.startsWith(prefix)).map((path) => path.slice(prefix.length)));
    const linked: string[] = [];
    for (const entry of await readdir(prefix, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name).slice(prefix.length);
      const next = await stat(stored(3, path)).catch(() => undefined);
      if (next?.ino === (await stat(stored(2, path))).ino) linked.push(path);
    }
    assert.ok(linked.length > 5, `most copies are carried forward: ${linked.join(', ')}`);
    assert.deepEqual(linked.filter((path) => opened.has(path)), [], 'a copy vouched for by its stat is not read');
    assert.ok(opened.has(unit), 'the damaged copy was read');
    assert.ok(!linked.includes(unit), 'and stored afresh');
    const copies = await new StateStore(stateDir).generationFiles(3);
    assert.ok(copies.some((file) => file.path === unit));
  });

  it('fsyncs every stored file and directory of a new generation before it is renamed into place', async function () {
    await assertStrace();
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    const trace = `${stateDir}.strace`;
    cleanup.push(trace);
    const args = ['apply', '--repo', repo, '--secrets-dir', secretsDir, ...hostArgs(), ...(await exampleAppArgs())];
    const traced = await execa('strace', ['-f', '-y', '-e', 'trace=fsync', '-o', trace, process.execPath, CLI, ...args], { reject: false, timeout: 120_000 });
    assert.equal(traced.exitCode, 0, String(traced.stderr));
    const generation = join(stateDir, 'generations', '2');
    const synced = new Set(
      [...(await readFile(trace, 'utf8')).matchAll(/fsync\(\d+<([^>]+)>\)/g)].flatMap(([, path]) => {
        const inside = new RegExp(`^${join(stateDir, 'generations')}/\\.2\\.[0-9a-f]{8}(.*)$`).exec(path ?? '');
        return inside ? [inside[1] ?? ''] : [];
      }),
    );
    const expected = [''];
    for (const entry of await readdir(generation, { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      if (entry.isDirectory() || (await stat(path)).nlink === 1) expected.push(path.slice(generation.length));
    }
    assert.ok(expected.includes('/files/etc/edge-reconciler/env/lod.env'));
    assert.deepEqual(expected.filter((path) => !synced.has(path)).sort(), []);
  });

  it('names a live generation that went missing, with the way out, and changes nothing', async () => {
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    assert.equal((await apply()).exitCode, 0);
    await rm(join(stateDir, 'generations', '2'), { recursive: true });
    const before = await files(root);
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 6', 'workers: 8'));
    const next = await apply();
    assert.equal(next.exitCode, 1);
    assert.match(next.stderr, /GENERATION_MISSING/);
    assert.match(next.stderr, /live generation 2 .* is missing.*restore that directory from a backup/s);
    assert.deepEqual(await files(root), before);
  });

  it('ignores a generation that a killed prune left without meta.json in history and rollback, and removes it', async () => {
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    assert.equal((await apply()).exitCode, 0);
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 6', 'workers: 8'));
    assert.equal((await apply()).exitCode, 0);
    await unlink(join(stateDir, 'generations/1/meta.json'));
    const history = await cli(['history', '--state-dir', stateDir, '--json']);
    assert.equal(history.exitCode, 0, history.stderr);
    assert.deepEqual((JSON.parse(history.stdout) as { generations: { generation: number }[] }).generations.map((g) => g.generation), [3, 2]);
    const rollback = await cli(['rollback', ...hostArgs()]);
    assert.equal(rollback.exitCode, 0, rollback.stderr);
    assert.match(await readFile(join(root, 'etc/edge-reconciler/env/lod.env'), 'utf8'), /^LOD_WORKERS=6$/m);
    assert.ok(!existsSync(join(stateDir, 'generations/1')));
  });

  it('prunes by rename: a kill in the middle of a prune leaves no partial generation', async () => {
    for (const workers of [5, 6, 7]) {
      await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace(/workers: \d+/, `workers: ${workers}`));
      const run = await apply(workers === 7 ? { EDGE_CRASH_AT: 'prune:renamed' } : {}, ['--keep', '2']);
      if (workers === 7) assert.equal(run.signal, 'SIGKILL');
      else assert.equal(run.exitCode, 0, run.stderr);
    }
    const history = await cli(['history', '--state-dir', stateDir, '--json']);
    assert.equal(history.exitCode, 0, history.stderr);
    assert.equal((await status()).lastApplied?.generation, 4);
    assert.equal((await recover()).exitCode, 0);
    assert.deepEqual((await readdir(join(stateDir, 'generations'))).sort(), ['3', '4']);
  });

  it('refuses a directory where a managed file belongs as PATH_NOT_FILE, for a human, storing no generation', async () => {
    const unit = join(root, 'etc/systemd/system/lod.service');
    await rm(unit);
    await mkdir(unit);
    const refused = await apply({}, ['--json']);
    assert.equal(refused.exitCode, 1);
    const json = JSON.parse(refused.stdout) as { error: { code: string; message: string } };
    assert.equal(json.error.code, 'PATH_NOT_FILE');
    assert.match(json.error.message, /\/etc\/systemd\/system\/lod\.service is a directory/);
    assert.deepEqual(await new StateStore(stateDir).generations(), [1]);
    const again = await apply({}, ['--json']);
    assert.equal((JSON.parse(again.stdout) as { error: { code: string } }).error.code, 'PATH_NOT_FILE');
    assert.deepEqual(await new StateStore(stateDir).generations(), [1]);
  });

  it('names a damaged journal.json, the damage and the way out, in recover and in every run', async () => {
    await writeFile(join(stateDir, 'journal.json'), '{"version": 1, "generation": 2,');
    const recovered = await recover();
    assert.notEqual(recovered.exitCode, 0);
    assert.doesNotMatch(recovered.stdout, /nothing to recover/);
    assert.match(recovered.stderr, /STATE_DAMAGED/);
    assert.match(recovered.stderr, /journal\.json is damaged: it is not valid JSON; .*move journal\.json aside/);
    const run = await apply({}, ['--json']);
    assert.equal(run.exitCode, 1);
    assert.equal((JSON.parse(run.stdout) as { error: { code: string } }).error.code, 'STATE_DAMAGED');
    await writeFile(join(stateDir, 'journal.json'), '{"version": 1, "generation": 2, "revision": "x", "ops": [{"path": "etc"}]}');
    assert.match((await recover()).stderr, /journal\.json is damaged: step 0 is malformed/);
    const outside = { path: '/etc/../../outside', kind: 'file', action: 'delete', before: null, after: null };
    await writeFile(join(stateDir, 'journal.json'), JSON.stringify({ version: 1, generation: 2, revision: 'x', ops: [outside] }));
    assert.match((await recover()).stderr, /journal\.json is damaged: step 0 is malformed/);
  });

  it('names a missing backup of an interrupted transaction instead of failing unnamed', async () => {
    await commitEdit(repo, 'hosts/lod-prod.yaml', (text) => text.replace('workers: 4', 'workers: 6'));
    const crashed = await apply({ EDGE_CRASH_AT: 'apply:op:0' });
    assert.equal(crashed.signal, 'SIGKILL');
    await rm(join(stateDir, 'txn', 'backup'), { recursive: true });
    const recovered = await recover();
    assert.notEqual(recovered.exitCode, 0);
    assert.match(recovered.stderr, /STATE_DAMAGED/);
    assert.match(recovered.stderr, /the backup of \/etc\/edge-reconciler\/env\/lod\.env is missing; restore \/etc\/edge-reconciler\/env\/lod\.env by hand/);
  });

  for (const [damage, text] of [
    ['NUL bytes', '\0\0\0'],
    ['an array', '[]'],
    ['a lastApplied without a generation', '{"history": [], "lastApplied": {"generation": "two"}}'],
  ]) {
    it(`sets a status.json holding ${damage} aside and rebuilds it from the generations`, async () => {
      await writeFile(join(stateDir, 'status.json'), text);
      for (const command of ['status', 'history']) {
        const read = await cli([command, '--state-dir', stateDir]);
        assert.equal(read.exitCode, 1);
        assert.match(read.stderr, /\[STATE_DAMAGED\]\n.*status\.json is damaged: .*moves it aside and rebuilds it/);
        assert.doesNotMatch(read.stderr, /\n\s+at /);
      }
      const run = await apply();
      assert.equal(run.exitCode, 0, run.stderr);
      assert.equal((await status()).lastApplied?.generation, 1);
      assert.equal(await readFile(join(stateDir, 'status.json.damaged'), 'utf8'), text);
    });
  }

  it('removes the leftovers of a killed run at the next start: temp files, partial generations, staging and scratch dirs', async () => {
    const dead = execa(process.execPath, ['-e', '']);
    await dead;
    const kinds = ['staging', 'probe', 'sandbox', 'file', 'caddy', 'hook'] as const;
    const temps = kinds.map((kind) => join(tmpdir(), `${runTempPrefix(kind, dead.pid)}x1y2z3`));
    // Named by an earlier version (no pid): removed once older than any validation, kept while it may be in use.
    const oldUnowned = join(tmpdir(), 'edge-validate-caddy-a1b2c3');
    const freshUnowned = join(tmpdir(), 'edge-validate-file-d4e5f6');
    // A live process's dirs (this test's, as a `check` beside the agent would have) are not leftovers.
    const alive = join(tmpdir(), `${runTempPrefix('caddy')}g7h8i9`);
    const planted = [
      join(stateDir, 'status.json.tmp-0a1b2c3d'),
      join(stateDir, 'generations/.2.0a1b2c3d/files/etc/edge-reconciler/env/lod.env'),
      join(stateDir, 'generations/.pruned-7.0a1b2c3d/meta.json'),
      join(stateDir, 'staging/tree-abc/edge.yaml'),
      ...temps.map((dir) => join(dir, 'etc/edge-reconciler/env/lod.env')),
      join(oldUnowned, 'Caddyfile'),
    ];
    const kept = [join(freshUnowned, 'lod.env'), join(alive, 'Caddyfile')];
    for (const path of [...planted, ...kept]) {
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, 'SESSION_SECRET=sess-Kk29SessionSecretValue\n');
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(oldUnowned, twoHoursAgo, twoHoursAgo);
    cleanup.push(...temps, oldUnowned, freshUnowned, alive);
    assert.equal((await recover()).exitCode, 0);
    for (const path of planted) assert.ok(!existsSync(path), `${path} is still there`);
    for (const dir of [...temps, oldUnowned]) assert.ok(!existsSync(dir), `${dir} is still there`);
    for (const path of kept) assert.ok(existsSync(path), `${path} was removed`);
  });

  it('names a state dir it cannot create instead of crashing with a stack trace', async () => {
    const blocker = join(stateDir, 'a-file');
    await writeFile(blocker, '');
    const run = await cli(['apply', '--repo', repo, '--secrets-dir', secretsDir, '--host', 'lod-prod', '--root', root, '--state-dir', join(blocker, 'state'), '--dry-activate', '--quiet']);
    assert.equal(run.exitCode, 1);
    assert.match(run.stderr, /STATE_DIR_UNWRITABLE/);
    assert.match(run.stderr, /cannot take the lock in the state dir .*a-file\/state: ENOTDIR/);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  });

  it('names a full state dir (ENOSPC) at lock time instead of crashing with a stack trace', async function () {
    const mountPoint = await mkdtemp(join(tmpdir(), 'edge-full-'));
    cleanup.push(mountPoint);
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint], { reject: false });
    assert.equal(mounted.exitCode, 0, `mounting a small tmpfs needs root: ${mounted.stderr}`);
    try {
      await mkdir(join(mountPoint, 'state/generations'), { recursive: true });
      await writeFile(join(mountPoint, 'filler'), Buffer.alloc(128 * 1024)).catch(() => undefined);
      const run = await cli(['apply', '--repo', repo, '--secrets-dir', secretsDir, '--host', 'lod-prod', '--root', root, '--state-dir', join(mountPoint, 'state'), '--dry-activate', '--quiet']);
      assert.equal(run.exitCode, 1);
      assert.match(run.stderr, /STATE_DIR_UNWRITABLE/);
      assert.match(run.stderr, /cannot take the lock in the state dir .*state: ENOSPC; free space/);
      assert.doesNotMatch(run.stderr, /\n\s+at /);
    } finally {
      await execa('umount', [mountPoint]);
    }
  });
});
