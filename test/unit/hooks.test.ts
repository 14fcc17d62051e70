import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import type { HookPhase, HookSpec, RoleSpec } from '../../reconciler/model.js';
import { redactorFor } from '../../reconciler/secrets/redact.js';
import { PROJECT_ROOT } from '../helpers/paths.js';

const ENV: HookEnv = { revision: 'a1b2c3d4e5f6', generation: 7, host: 'edge-1' };

/** A role whose hooks are given in role.yaml's short form (the script) or as a HookSpec. */
function role(name: string, hooks: Partial<Record<HookPhase, string | HookSpec>>): RoleSpec {
  const specs = Object.fromEntries(
    Object.entries(hooks).map(([phase, hook]) => [phase, typeof hook === 'string' ? { script: hook, network: false } : hook]),
  );
  return { name, vars: {}, resources: [], health: [], hooks: specs, source: { file: `roles/${name}/role.yaml` } };
}

/** Live (not zombie) processes on the host whose command line is exactly `argv`. */
async function processesRunning(argv: string[]): Promise<number[]> {
  const wanted = `${argv.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmdline, state] = await Promise.all([
      readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => ''),
      readFile(`/proc/${entry}/stat`, 'utf8').catch(() => ''),
    ]);
    if (cmdline === wanted && state !== '' && !/^\d+ \(.*\) [ZX] /.test(state)) found.push(Number(entry));
  }
  return found;
}

describe('hooks', () => {
  let tree: string;

  beforeEach(async () => {
    tree = await mkdtemp(join(tmpdir(), 'edge-hooks-'));
  });
  afterEach(() => rm(tree, { recursive: true, force: true }));

  /** Writes `roles/<role>/hooks/<name>` into the tree and returns its invocation. */
  async function hook(
    roleName: string,
    name: string,
    body: string,
    phase: HookPhase = 'post-apply',
    mode = 0o755,
    network = false,
  ): Promise<HookInvocation> {
    const dir = join(tree, 'roles', roleName, 'hooks');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), mode);
    return hooksFor(phase, [role(roleName, { [phase]: { script: `hooks/${name}`, network } })], tree)[0] as HookInvocation;
  }

  it('lists the hooks of a phase in role order, with absolute paths in the tree and what they may reach', () => {
    const roles = [
      role('web', { 'post-apply': 'hooks/notify.sh' }),
      role('db', { 'pre-apply': 'migrate.sh' }),
      role('app', { 'post-apply': { script: 'hooks/a.sh', network: true } }),
    ];
    assert.deepEqual(hooksFor('post-apply', roles, '/tree'), [
      { phase: 'post-apply', role: 'web', script: '/tree/roles/web/hooks/notify.sh', cwd: '/tree/roles/web', network: false },
      { phase: 'post-apply', role: 'app', script: '/tree/roles/app/hooks/a.sh', cwd: '/tree/roles/app', network: true },
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
      const cwd = lines.at(-1) ?? '';
      assert.match(cwd, /\/role$/, 'runs in the copy of its role folder');
      assert.equal(vars.HOME, join(cwd, '..'), 'HOME is its scratch dir');
      assert.equal(vars.TMPDIR, join(cwd, '..'));
    } finally {
      delete process.env.EDGE_TEST_LEAK;
    }
  });

  it('kills the hook and what it started when it runs past its timeout', async () => {
    // A sleep of an odd length, so that it is found by its command line on the host, from outside the sandbox.
    const child = ['sleep', '3017'];
    const invocation = await hook('app', 'slow.sh', `sleep 3017 &\necho started\nwait`);
    const started = Date.now();
    // Long enough for the hook to start even on a loaded machine.
    const [outcome] = await runHooks('post-apply', [invocation], ENV, { timeoutMs: 3_000 });
    assert.ok(Date.now() - started < 60_000, 'did not wait for the sleep');
    assert.equal(outcome?.timedOut, true);
    assert.equal(outcome?.exitCode, 137);
    assert.match(outcome?.output ?? '', /started[\s\S]*timed out after 3s/);
    assert.deepEqual(await processesRunning(child), [], 'the background sleep was killed too');
    assert.equal(firstFailure([outcome!]), outcome);
  });

  it('runs the hook confined: nothing outside its scratch dir is writable, and the tree is left as it was', async () => {
    const probe = '/etc/edge-hook-probe';
    await rm(probe, { force: true });
    const invocation = await hook(
      'app',
      'write.sh',
      [
        `touch ${probe} 2>/dev/null && echo etc=written || echo etc=refused`,
        `touch /var/tmp/edge-hook-probe 2>/dev/null && echo var=written || echo var=refused`,
        'echo changed > hooks/write.sh && echo copy=written',
        'touch "$TMPDIR/scratch" && echo scratch=written',
      ].join('\n'),
    );
    const before = await readFile(invocation.script, 'utf8');
    const [outcome] = await runHooks('post-apply', [invocation], ENV, {});
    assert.equal(outcome?.exitCode, 0, outcome?.output);
    assert.equal(outcome?.output, 'etc=refused\nvar=refused\ncopy=written\nscratch=written\n');
    await assert.rejects(stat(probe), { code: 'ENOENT' });
    await assert.rejects(stat('/var/tmp/edge-hook-probe'), { code: 'ENOENT' });
    assert.equal(await readFile(invocation.script, 'utf8'), before, 'the exported tree is untouched');
  });

  it('reads nothing of root through symlinks in its role folder, absolute or relative', async () => {
    const secret = join(tree, 'root-only');
    await writeFile(secret, 'root-only-content\n', { mode: 0o600 });
    const invocation = await hook('app', 'leak.sh', 'cat ./abs ./rel ./etc-shadow 2>&1; true');
    await symlink(secret, join(tree, 'roles', 'app', 'abs'));
    await symlink('../../root-only', join(tree, 'roles', 'app', 'rel'));
    await symlink('/etc/shadow', join(tree, 'roles', 'app', 'etc-shadow'));
    const [outcome] = await runHooks('post-apply', [invocation], ENV, {});
    assert.equal(outcome?.exitCode, 0, outcome?.output);
    assert.doesNotMatch(outcome?.output ?? '', /root-only-content|root:/);
    assert.match(outcome?.output ?? '', /Permission denied|No such file/);
  });

  it('runs the hook as nobody (uid 65534 on the host) without capabilities', async () => {
    // Inside, the hook may be root of a user namespace that maps to nobody: the map says which host uid it is.
    const invocation = await hook('app', 'who.sh', 'id -u; cat /proc/self/uid_map; grep ^CapEff /proc/self/status');
    const [outcome] = await runHooks('post-apply', [invocation], ENV, {});
    assert.equal(outcome?.exitCode, 0, outcome?.output);
    const [uid = '', ...rest] = (outcome?.output ?? '').trim().split('\n');
    const maps = rest.filter((line) => /^\s*\d+\s+\d+\s+\d+\s*$/.test(line)).map((line) => line.trim().split(/\s+/).map(Number));
    const inside = Number(uid);
    const map = maps.find(([first = 0, , count = 0]) => inside >= first && inside < first + count);
    assert.ok(map, `a uid map covers uid ${uid}: ${outcome?.output}`);
    assert.equal((map[1] ?? 0) + inside - (map[0] ?? 0), 65534);
    assert.match(outcome?.output ?? '', /^CapEff:\s+0+$/m);
  });

  describe('network', () => {
    let server: Server;
    let url: string;
    let requests = 0;

    before(async () => {
      server = createServer((_request, response) => {
        requests++;
        response.end('pong\n');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('cannot reach a loopback HTTP server without network: true', async () => {
      requests = 0;
      const invocation = await hook('app', 'curl.sh', `curl -sS -m 10 ${url}`);
      const [outcome] = await runHooks('post-apply', [invocation], ENV, {});
      assert.notEqual(outcome?.exitCode, 0, outcome?.output);
      assert.equal(requests, 0);
    });

    it('reaches it with network: true, still as nobody', async () => {
      requests = 0;
      const invocation = await hook('app', 'curl.sh', `curl -sS -m 10 ${url} && cat /proc/self/uid_map`, 'post-apply', 0o755, true);
      const [outcome] = await runHooks('post-apply', [invocation], ENV, {});
      assert.equal(outcome?.exitCode, 0, outcome?.output);
      assert.match(outcome?.output ?? '', /^pong\n/);
      assert.doesNotMatch(outcome?.output ?? '', /^\s*0\s+0\s+4294967295/m, 'not the host\'s root');
      assert.equal(requests, 1);
    });
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
    assert.equal(outcomes[0]?.exitCode, 137);
    assert.match(outcomes[0]?.output ?? '', /cancelled/);
  });

  describe('example hooks', () => {
    const examples = join(PROJECT_ROOT, 'hooks', 'examples');

    /** The example copied into a role folder of the tree, the way an operator uses it. */
    async function example(name: string, phase: HookPhase, network = false): Promise<HookInvocation> {
      const dir = join(tree, 'roles', 'examples', 'hooks');
      await mkdir(dir, { recursive: true });
      await copyFile(join(examples, name), join(dir, name));
      await chmod(join(dir, name), 0o755);
      return hooksFor(phase, [role('examples', { [phase]: { script: `hooks/${name}`, network } })], tree)[0] as HookInvocation;
    }

    it('pre-apply-disk-space.sh passes on this machine (default 10% free) and refuses with an impossible one', async () => {
      const low = await runHooks('pre-apply', [await example('pre-apply-disk-space.sh', 'pre-apply')], ENV, {});
      assert.equal(low[0]?.exitCode, 0, low[0]?.output);
      const wrap = await hook('examples', 'wrap.sh', 'MIN_FREE_PERCENT=101 exec ./hooks/pre-apply-disk-space.sh', 'pre-apply');
      const high = await runHooks('pre-apply', [wrap], ENV, {});
      assert.equal(high[0]?.exitCode, 1);
      assert.match(high[0]?.output ?? '', /refusing to apply a1b2c3d4e5f6/);
    });

    it('post-apply-notify.sh logs the revision, with the network its docs declare', async () => {
      const [outcome] = await runHooks('post-apply', [await example('post-apply-notify.sh', 'post-apply', true)], { ...ENV, result: 'success' }, {});
      assert.equal(outcome?.exitCode, 0, outcome?.output);
      assert.match(outcome?.output ?? '', /a1b2c3d4e5f6/);
    });
  });
});
