/**
 * Commands the repo supplies (a file's `validate` command, caddy over the repo's Caddyfiles) run confined: they
 * cannot write outside their scratch dir, reach the network, read root-only files, or outlive their timeout; caddy
 * imports cannot leave /etc/caddy; and `check` says when confinement is not available.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTempPrefix } from '../../reconciler/host/run-temp.js';
import { confinement, makeScratchDir, runWith } from '../../reconciler/host/sandbox.js';
import type { DesiredState } from '../../reconciler/model.js';
import { redactorFor } from '../../reconciler/secrets/redact.js';
import { collectValidationProblems } from '../../reconciler/stages/validate.js';
import { validateCaddy } from '../../renderers/caddy/validate.js';
import { validateFiles } from '../../renderers/file/validate.js';
import type { RenderedFile, ValidateInput } from '../../renderers/types.js';
import { execa } from 'execa';
import { copyExampleRepo, runCli } from '../helpers/cli.js';
import { CLI } from '../helpers/paths.js';
import { waitUntil } from '../helpers/wait.js';

const GUARDS = { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' };

function fileWith(path: string, content: string, validateCommand?: string[], kind: RenderedFile['kind'] = 'file'): RenderedFile {
  return {
    path,
    content,
    mode: 0o644,
    owner: 'root',
    group: 'root',
    kind,
    resource: `app/${kind}/x`,
    source: { file: 'roles/app/role.yaml', line: 3, path: '/resources/0' },
    template: `roles/app/templates/${path.split('/').pop() ?? 'x'}.hbs`,
    sensitive: false,
    secrets: [],
    adopt: false,
    ...(validateCommand ? { validateCommand } : {}),
  };
}

function inputOf(files: RenderedFile[], stagingDir: string, extra: Partial<ValidateInput> = {}): ValidateInput {
  return { files, allFiles: files, stagingDir, guards: GUARDS, externalExecPrefixes: [], ...extra };
}

/** Processes whose command line holds `marker`. */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(pid));
  }
  return found;
}

describe('repo-supplied commands run confined', function () {
  this.timeout(60_000);
  let work: string;
  let server: Server;
  let requests = 0;

  before(async function () {
    const sandbox = await confinement();
    assert.ok(sandbox.confined, `the sandbox must start on the test machine (root, util-linux): ${sandbox.reason}`);
    work = await mkdtemp(join(tmpdir(), 'edge-confined-'));
    server = createServer((_req, res) => {
      requests++;
      res.end('reached\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    server?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a validate command cannot write outside its scratch dir, reach the network or read root-only files', async () => {
    const escape = join(work, 'escaped');
    const secret = join(work, 'root-only-secret');
    await writeFile(secret, 'sekrit-Vx81ConfinedValue\n', { mode: 0o600 });
    await chmod(work, 0o755);
    const port = (server.address() as AddressInfo).port;
    const script = [
      `echo pwned > ${escape} || echo "error: write refused"`,
      `echo pwned > /var/tmp/edge-confined-escape-$$ || echo "error: var tmp refused"`,
      `(exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && echo "error: NETWORK REACHED" || echo "error: no network"`,
      `cat ${secret} || echo "error: secret unreadable"`,
      'exit 1',
    ].join('\n');
    const file = fileWith('/etc/logrotate.d/x', 'x\n', ['/bin/bash', '-c', script]);
    const problems = await validateFiles(inputOf([file], work));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.code, 'FILE_VALIDATE');
    assert.match(problems[0]?.message ?? '', /escaped: Read-only file system/);
    assert.match(problems[0]?.message ?? '', /root-only-secret: Permission denied/);
    assert.doesNotMatch(problems[0]?.message ?? '', /sekrit|NETWORK REACHED/);
    await assert.rejects(stat(escape), { code: 'ENOENT' });
    assert.deepEqual((await readdir('/var/tmp')).filter((name) => name.startsWith('edge-confined-escape-')), []);
    assert.equal(requests, 0);
  });

  it('a validate command cannot write to any mount: /dev/shm, world-writable on the host, is read-only too', async () => {
    const script = 'echo pwned > /dev/shm/edge-confined-escape-$$ || echo "error: shm refused"; exit 1';
    const problems = await validateFiles(inputOf([fileWith('/etc/logrotate.d/x', 'x\n', ['/bin/sh', '-c', script])], work));
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.message ?? '', /\/dev\/shm\/edge-confined-escape-\d+: Read-only file system/);
    assert.deepEqual((await readdir('/dev/shm')).filter((name) => name.startsWith('edge-confined-escape-')), []);
  });

  it('a validate command sees every mount read-only but its scratch dir and /proc, one with a space in its name too, and no descriptor of the set-up', async () => {
    // A writable mount of its own whose name mountinfo escapes (\040): the set-up must name it right.
    const spaced = join(work, 'mount with space');
    await mkdir(spaced);
    await chmod(work, 0o755);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=1777', 'edge-test', spaced]);
    try {
      // One line: the mounts left writable (the one on top at each mount point: a mount hidden under another is out
      // of reach), whether fd 3 (the set-up's table of remounts) is still open, and what writing to the new mount did.
      const script = [
        `w=$( { echo pwned > '${spaced}/x'; } 2>&1 ) && w=written`,
        `rw=$(awk -v pwd="$PWD" '{ top[$5] = $6 } END { for (m in top) if (m !~ /^\\/proc(\\/|$)/ && m != pwd && ("," top[m] ",") !~ /,ro,/) printf "%s ", m }' /proc/self/mountinfo)`,
        '[ -e /proc/self/fd/3 ] && fd=open || fd=closed',
        'echo "error: writable [$rw] fd 3 $fd; $w" >&2; exit 1',
      ].join('\n');
      const [problem, ...more] = await validateFiles(inputOf([fileWith('/etc/logrotate.d/x', 'x\n', ['/bin/sh', '-c', script])], work));
      assert.deepEqual(more, []);
      assert.match(problem?.message ?? '', /: error: writable \[\] fd 3 closed; .*mount with space\/x: Read-only file system$/);
      await assert.rejects(stat(join(spaced, 'x')), { code: 'ENOENT' });
    } finally {
      await execa('umount', [spaced]);
    }
  });

  it('kills a validate command that never exits, with everything it started, at its timeout', async () => {
    const marker = `98${process.pid}7`;
    const file = fileWith('/etc/logrotate.d/x', 'x\n', ['/bin/sh', '-c', `trap "" TERM; sleep ${marker} & sleep ${marker}; wait`]);
    const problems = await validateFiles(inputOf([file], work, { commandTimeoutMs: 300 }));
    assert.equal(problems[0]?.code, 'VALIDATOR_TIMEOUT');
    assert.match(problems[0]?.message ?? '', /killed with everything it started/);
    await waitUntil(async () => (await processesWith(`sleep\0${marker}`)).length === 0, { what: 'the killed sleeps to be gone' });
  });

  it('bounds what a validate command may write, and keeps none of it', async () => {
    const file = fileWith('/etc/logrotate.d/x', 'x\n', ['/bin/sh', '-c', 'head -c 200000000 /dev/zero > big || { echo "error: write stopped"; exit 1; }; exit 0']);
    const [problem] = await validateFiles(inputOf([file], work));
    assert.equal(problem?.code, 'FILE_VALIDATE');
    assert.match(problem?.message ?? '', /No space left on device/);
    assert.deepEqual((await readdir(tmpdir())).filter((name) => name.startsWith(runTempPrefix('file'))), []);
  });

  it('where confinement is unavailable, still kills the command and what it started at its timeout', async () => {
    const marker = `97${process.pid}3`;
    const scratch = await makeScratchDir();
    try {
      const result = await runWith(
        { argv: ['/bin/sh', '-c', `trap "" TERM; sleep ${marker} & sleep ${marker}; wait`], scratchDir: scratch.path, env: { PATH: '/usr/bin:/bin' }, timeoutMs: 300 },
        { confined: false, reason: 'test' },
      );
      assert.equal(result.timedOut, true);
      await waitUntil(async () => (await processesWith(`sleep\0${marker}`)).length === 0, { what: 'the killed sleeps to be gone' });
    } finally {
      await scratch.remove();
    }
  });

  it('runs the tool as an unprivileged user with its scratch dir as cwd and HOME', async () => {
    const file = fileWith('/etc/logrotate.d/x', 'x\n', ['/bin/sh', '-c', 'echo "error: uid $(id -u) home $HOME pwd $(pwd)"; exit 1']);
    const [problem] = await validateFiles(inputOf([file], work));
    const uid = /uid (\d+)/.exec(problem?.message ?? '')?.[1];
    const { mode } = await confinement();
    assert.equal(uid, mode === 'nobody' ? '65534' : '0', problem?.message);
    // Both are the scratch dir, which messages show stripped, as host paths.
    assert.match(problem?.message ?? '', /home\s+pwd\s*$/);
  });

  it('refuses a caddy import that leaves /etc/caddy, before caddy runs, without printing the file', async () => {
    const cases = [
      'import /etc/edge-reconciler/secrets/*',
      'import ../edge-reconciler/secrets/LOD_DB_PASSWORD',
      'a.example.org {\n\timport /etc/caddy/../shadow\n}',
      'import {$HOME}/x',
      'a.example.org { import "/root/.ssh/id_ed25519" }',
    ];
    for (const content of cases) {
      const main = fileWith('/etc/caddy/Caddyfile', `${content}\n`, undefined, 'caddy');
      const problems = await validateCaddy(inputOf([main], work));
      assert.equal(problems.length, 1, content);
      assert.equal(problems[0]?.code, 'CADDY_IMPORT_OUTSIDE', content);
      assert.equal(problems[0]?.file, 'roles/app/templates/Caddyfile.hbs');
      assert.match(problems[0]?.message ?? '', /\/etc\/caddy\/Caddyfile line \d+: import ".*" (resolves to|uses a placeholder)/);
    }
    const inside = fileWith('/etc/caddy/Caddyfile', '(common) {\n\tencode gzip\n}\nimport sites/*.caddy\nimport common\n', undefined, 'caddy');
    const site = fileWith('/etc/caddy/sites/a.caddy', 'a.example.org {\n\timport common\n\trespond ok\n}\n', undefined, 'caddy');
    assert.deepEqual(await validateCaddy(inputOf([inside, site], work)), []);
  });

  it('redacts known secret values from every validator\'s problems', async () => {
    const state = { edge: { guards: GUARDS, externalExecPrefixes: [] } } as unknown as DesiredState;
    const files = [
      fileWith('/etc/logrotate.d/x', 'x\n', ['/bin/sh', '-c', 'echo "error: sekrit-Vx81ConfinedValue"; exit 1']),
      fileWith('/etc/caddy/sites/a.caddy', 'a.example.org {\n\tsekritDirective1234\n}\n', undefined, 'caddy'),
    ];
    const problems = await collectValidationProblems(state, files, { redact: redactorFor(['sekrit-Vx81ConfinedValue', 'sekritDirective1234']) });
    assert.deepEqual(problems.map((p) => p.code).sort(), ['CADDY_INVALID', 'FILE_VALIDATE']);
    for (const problem of problems) {
      assert.match(problem.message, /<redacted>/);
      assert.doesNotMatch(problem.message, /sekrit/);
    }
  });

  it('check run by a user other than root (a CI runner) confines the commands too', async () => {
    const repo = await copyExampleRepo();
    const marker = join('/var/tmp', `edge-ci-escape-${process.pid}`);
    try {
      const role = join(repo, 'roles/base/role.yaml');
      await writeFile(role, (await readFile(role, 'utf8')).replace('validate: [logrotate,', `validate: [/bin/sh, -c, "touch ${marker}; logrotate \\"$@\\"", sh,`));
      await execa('chmod', ['-R', 'a+rX', repo]);
      const result = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'check', '--repo', repo], {
        reject: false,
        cwd: '/',
        env: { PATH: process.env.PATH ?? '', HOME: '/' },
        extendEnv: false,
      });
      assert.match(String(result.stdout), /all 4 hosts pass/, String(result.stdout) + String(result.stderr));
      assert.doesNotMatch(String(result.stdout), /unconfined/);
      await assert.rejects(stat(marker), { code: 'ENOENT' });
    } finally {
      await rm(repo, { recursive: true, force: true });
      await rm(marker, { force: true });
    }
  });

  it('check says when repo-supplied commands cannot be confined', async () => {
    const shims = await mkdtemp(join(tmpdir(), 'edge-no-unshare-'));
    const repo = await copyExampleRepo();
    try {
      await writeFile(join(shims, 'unshare'), '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
      const result = await runCli(['check', '--repo', repo], { env: { PATH: `${shims}:${process.env.PATH ?? ''}` } });
      assert.match(result.stdout, /note {2}repo-supplied commands .* ran unconfined: the namespace sandbox does not start here: unshare: unshare failed/);
      assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    } finally {
      await rm(shims, { recursive: true, force: true });
      await rm(repo, { recursive: true, force: true });
    }
  });
});
