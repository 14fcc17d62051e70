import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  describeHookFailure,
  firstFailure,
  hooksFor,
  HOOK_PATH,
  runHooks,
  type HookEnv,
  type HookInvocation,
} from '../../hooks/runner.js';
import type { HookPhase, RoleSpec } from '../../reconciler/model.js';
import { redactorFor } from '../../reconciler/secrets/redact.js';
import { PROJECT_ROOT } from '../helpers/paths.js';

const ENV: HookEnv = { revision: 'a1b2c3d4e5f6', generation: 7, host: 'edge-1' };

function role(name: string, hooks: RoleSpec['hooks']): RoleSpec {
  return { name, vars: {}, resources: [], health: [], hooks, source: { file: `roles/${name}/role.yaml` } };
}

/** A killed process may linger as a zombie when PID 1 does not reap orphans: that counts as dead. */
async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) [ZX] /.test(stat);
}

describe('hooks', () => {
  let tree: string;

  beforeEach(async () => {
    tree = await mkdtemp(join(tmpdir(), 'edge-hooks-'));
  });
  afterEach(() => rm(tree, { recursive: true, force: true }));

  /** Writes `roles/<role>/hooks/<name>` into the tree and returns its invocation. */
  async function hook(roleName: string, name: string, body: string, phase: HookPhase = 'post-apply', mode = 0o755): Promise<HookInvocation> {
    const dir = join(tree, 'roles', roleName, 'hooks');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), mode);
    return hooksFor(phase, [role(roleName, { [phase]: `hooks/${name}` })], tree)[0] as HookInvocation;
  }

  it('lists the hooks of a phase in role order, with absolute paths in the tree', () => {
    const roles = [role('web', { 'post-apply': 'hooks/notify.sh' }), role('db', { 'pre-apply': 'migrate.sh' }), role('app', { 'post-apply': 'hooks/a.sh' })];
    assert.deepEqual(hooksFor('post-apply', roles, '/tree'), [
      { phase: 'post-apply', role: 'web', script: '/tree/roles/web/hooks/notify.sh', cwd: '/tree/roles/web' },
      { phase: 'post-apply', role: 'app', script: '/tree/roles/app/hooks/a.sh', cwd: '/tree/roles/app' },
    ]);
  });

  it('gives the hook the EDGE_* contract, a minimal PATH and nothing of the agent\'s environment', async () => {
    process.env.EDGE_TEST_LEAK = 'agent-secret-value';
    try {
      const invocation = await hook('app', 'env.sh', 'env | sort; pwd');
      const [outcome] = await runHooks('on-failure', [invocation], { ...ENV, result: 'failure', error: 'health failed: app.service' }, {});
      assert.equal(outcome?.exitCode, 0);
      const lines = (outcome?.output ?? '').trim().split('\n');
      const vars = Object.fromEntries(lines.filter((line) => line.includes('=')).map((line) => line.split(/=(.*)/s).slice(0, 2)));
      assert.equal(vars.EDGE_REVISION, 'a1b2c3d4e5f6');
      assert.equal(vars.EDGE_GENERATION, '7');
      assert.equal(vars.EDGE_PHASE, 'on-failure');
      assert.equal(vars.EDGE_RESULT, 'failure');
      assert.equal(vars.EDGE_ERROR, 'health failed: app.service');
      assert.equal(vars.EDGE_HOST, 'edge-1');
      assert.equal(vars.EDGE_ROLE, 'app');
      assert.equal(vars.PATH, HOOK_PATH);
      assert.equal(vars.EDGE_TEST_LEAK, undefined);
      assert.equal(vars.HOME, undefined);
      assert.equal(lines.at(-1), join(tree, 'roles', 'app'), 'runs in its role folder');
    } finally {
      delete process.env.EDGE_TEST_LEAK;
    }
  });

  it('kills the hook and what it started when it runs past its timeout', async () => {
    const pidFile = join(tree, 'child.pid');
    const invocation = await hook('app', 'slow.sh', `echo started\nsleep 30 &\necho $! > ${pidFile}\nwait`);
    const started = Date.now();
    // Long enough for the hook to start and write its pid even on a loaded machine.
    const [outcome] = await runHooks('post-apply', [invocation], ENV, { timeoutMs: 2_000 });
    assert.ok(Date.now() - started < 25_000, 'did not wait for the 30 s sleep');
    assert.equal(outcome?.timedOut, true);
    assert.notEqual(outcome?.exitCode, 0);
    assert.match(outcome?.output ?? '', /started[\s\S]*timed out after 2s/);
    const child = Number((await readFile(pidFile, 'utf8')).trim());
    assert.equal(await isAlive(child), false, 'the background sleep was killed too');
    assert.equal(firstFailure([outcome!]), outcome);
  });

  it('stops pre-apply at the first failure and returns the outcomes so far', async () => {
    const roles = ['a', 'b', 'c'];
    const bodies = ['echo a ok', 'echo "disk too full" >&2; exit 3', 'echo c ran; exit 0'];
    for (const [index, name] of roles.entries()) await hook(name, 'check.sh', bodies[index] as string, 'pre-apply');
    const hooks = hooksFor('pre-apply', roles.map((name) => role(name, { 'pre-apply': 'hooks/check.sh' })), tree);
    const logged: string[] = [];
    const outcomes = await runHooks('pre-apply', hooks, ENV, { log: (outcome) => logged.push(outcome.role) });
    assert.deepEqual(outcomes.map((outcome) => [outcome.role, outcome.exitCode]), [['a', 0], ['b', 3]]);
    assert.deepEqual(logged, ['a', 'b']);
    const failed = firstFailure(outcomes);
    assert.equal(failed?.role, 'b');
    assert.equal(describeHookFailure(failed!), 'pre-apply hook roles/b/hooks/check.sh of role b exited 3: disk too full');
  });

  it('runs every hook of the other phases and only reports failures', async () => {
    const roles = ['a', 'b', 'c'];
    const bodies = ['exit 1', 'exit 2', 'echo c ran'];
    for (const [index, name] of roles.entries()) await hook(name, 'notify.sh', bodies[index] as string, 'on-rollback');
    const hooks = hooksFor('on-rollback', roles.map((name) => role(name, { 'on-rollback': 'hooks/notify.sh' })), tree);
    const outcomes = await runHooks('on-rollback', hooks, { ...ENV, result: 'rolled-back' }, {});
    assert.deepEqual(outcomes.map((outcome) => outcome.exitCode), [1, 2, 0]);
    assert.equal(outcomes[2]?.output, 'c ran\n');
    assert.equal(firstFailure(outcomes)?.role, 'a');
  });

  it('redacts secret values in the output and keeps only its last 4 KiB', async () => {
    const secret = 'token-0123456789abcdef';
    const invocation = await hook('app', 'leak.sh', `i=0; while [ $i -lt 500 ]; do echo "line $i"; i=$((i+1)); done; echo "using ${secret}" >&2`);
    const [outcome] = await runHooks('post-apply', [invocation], ENV, { redact: redactorFor([secret]) });
    const output = outcome?.output ?? '';
    assert.ok(!output.includes(secret));
    assert.match(output, /using <redacted>\n$/);
    assert.ok(Buffer.byteLength(output) <= 4096);
    assert.ok(!output.includes('line 0\n'));
  });

  it('reports a missing script as 127 and a non-executable one as 126, with a clear message', async () => {
    const missing = hooksFor('post-apply', [role('app', { 'post-apply': 'hooks/nope.sh' })], tree);
    const plain = await hook('web', 'plain.sh', 'echo never', 'post-apply', 0o644);
    const outcomes = await runHooks('post-apply', [...missing, plain], ENV, {});
    assert.equal(outcomes[0]?.exitCode, 127);
    assert.match(outcomes[0]?.output ?? '', /hook script .*roles\/app\/hooks\/nope\.sh does not exist/);
    assert.equal(outcomes[1]?.exitCode, 126);
    assert.match(outcomes[1]?.output ?? '', /plain\.sh is not executable/);
  });

  it('refuses a script that resolves outside its role folder', async () => {
    const outside = join(tree, 'outside.sh');
    await writeFile(outside, '#!/bin/sh\necho escaped\n', { mode: 0o755 });
    await mkdir(join(tree, 'roles', 'app'), { recursive: true });
    await symlink(outside, join(tree, 'roles', 'app', 'link.sh'));
    const hooks = hooksFor('post-apply', [role('app', { 'post-apply': 'link.sh' })], tree);
    const [outcome] = await runHooks('post-apply', hooks, ENV, {});
    assert.equal(outcome?.exitCode, 126);
    assert.match(outcome?.output ?? '', /outside its role folder/);
  });

  it('runs nothing under --dry-activate and reports every hook as skipped', async () => {
    const marker = join(tree, 'ran');
    const invocation = await hook('app', 'touch.sh', `touch ${marker}`, 'pre-apply');
    const outcomes = await runHooks('pre-apply', [invocation], ENV, { dryRun: true });
    assert.equal(outcomes[0]?.skipped, true);
    assert.equal(outcomes[0]?.output, 'dry-activate: not run');
    assert.equal(firstFailure(outcomes), undefined);
    await assert.rejects(readFile(marker));
  });

  it('kills the running hook when cancelled and starts no further one', async () => {
    const controller = new AbortController();
    const first = await hook('a', 'wait.sh', 'sleep 30');
    const second = await hook('b', 'wait.sh', 'echo second');
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const outcomes = await runHooks('post-apply', [first, second], ENV, { signal: controller.signal });
    assert.ok(Date.now() - started < 20_000, 'did not wait for the 30 s sleep');
    assert.equal(outcomes.length, 1);
    assert.notEqual(outcomes[0]?.exitCode, 0);
    assert.match(outcomes[0]?.output ?? '', /cancelled/);
  });

  describe('example hooks', () => {
    const examples = join(PROJECT_ROOT, 'hooks', 'examples');

    it('pre-apply-disk-space.sh passes on this machine (default 10% free) and refuses with an impossible one', async () => {
      const script = join(examples, 'pre-apply-disk-space.sh');
      const low = await runHooks('pre-apply', [{ phase: 'pre-apply', role: 'examples', script, cwd: examples }], ENV, {});
      assert.equal(low[0]?.exitCode, 0, low[0]?.output);
      await writeFile(join(tree, 'wrap.sh'), `#!/bin/sh\nMIN_FREE_PERCENT=101 exec ${script}\n`, { mode: 0o755 });
      const high = await runHooks('pre-apply', [{ phase: 'pre-apply', role: 'x', script: join(tree, 'wrap.sh'), cwd: tree }], ENV, {});
      assert.equal(high[0]?.exitCode, 1);
      assert.match(high[0]?.output ?? '', /refusing to apply a1b2c3d4e5f6/);
    });

    it('post-apply-notify.sh logs the revision', async () => {
      const script = join(examples, 'post-apply-notify.sh');
      const [outcome] = await runHooks('post-apply', [{ phase: 'post-apply', role: 'examples', script, cwd: examples }], { ...ENV, result: 'success' }, {});
      assert.equal(outcome?.exitCode, 0, outcome?.output);
      assert.match(outcome?.output ?? '', /a1b2c3d4e5f6/);
    });
  });
});
