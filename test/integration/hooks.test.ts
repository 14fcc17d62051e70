/**
 * The repo's hooks through a real reconcile (systemctl recorded, hooks run for real, confined, from the git
 * revision): the EDGE_* contract reported to a loopback HTTP server by hooks that declare `network: true`, and a
 * pre-apply hook that is refused a write outside its sandbox and so stops the run before any change.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reconcile } from '../../reconciler/reconcile.js';
import { StateStore } from '../../reconciler/state/state-store.js';
import { git } from '../helpers/git-repo.js';
import { shimContext } from '../helpers/systemctl-shim.js';
import { TINY_HOST, writeTinyRepo } from '../helpers/tiny-repo.js';

describe('hooks in a reconcile', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  let server: Server;
  let url: string;
  const reports: string[] = [];

  before(async () => {
    server = createServer((request, response) => {
      reports.push(new URL(request.url ?? '/', 'http://hook').searchParams.get('r') ?? '');
      response.end('ok\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A repo whose role has the pre-apply hook `pre` (short form, no network) and a post-apply one that reports. */
  async function setup(pre: string) {
    const repo = await writeTinyRepo({
      role: {
        resources: [{ kind: 'file', name: 'motd', target: '/etc/tmpfiles.d/edge-motd.conf', content: 'd /run/edge 0755 root root -\n' }],
        hooks: { 'pre-apply': 'hooks/pre.sh', 'post-apply': { script: 'hooks/post.sh', network: true } },
      },
    });
    await mkdir(join(repo, 'roles/app/hooks'), { recursive: true });
    await writeFile(join(repo, 'roles/app/hooks/pre.sh'), `#!/bin/sh\n${pre}\n`, { mode: 0o755 });
    await writeFile(
      join(repo, 'roles/app/hooks/post.sh'),
      `#!/bin/sh\nexec curl -sS -m 10 -G ${url} --data-urlencode "r=$EDGE_PHASE $EDGE_REVISION $EDGE_GENERATION $EDGE_RESULT $EDGE_HOST $(id -u)"\n`,
      { mode: 0o755 },
    );
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'add', '-A');
    await git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'hooks');
    const root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    const stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    cleanup.push(repo, root, stateDir);
    const ctx = shimContext({ root, store: new StateStore(stateDir), repo });
    return { ctx, root, revision: await git(repo, 'rev-parse', 'HEAD') };
  }

  it('runs pre-apply and post-apply hooks confined, with the EDGE_* variables and the network one declares', async () => {
    reports.length = 0;
    const { ctx, revision } = await setup(`curl -sS -m 10 -G ${url} --data-urlencode r=pre-without-network && exit 9; exit 0`);
    const outcome = await reconcile(ctx);
    assert.equal(outcome.result, 'applied', outcome.error?.message);
    // uid 0 of the hook's user namespace, which is nobody on the host (test/unit/hooks.test.ts checks the map).
    assert.deepEqual(reports, [`post-apply ${revision} 1 success ${TINY_HOST} 0`]);
  });

  it('stops before any change when a pre-apply hook fails: here, refused a write outside its sandbox', async () => {
    const probe = '/etc/edge-hook-probe';
    await rm(probe, { force: true });
    const { ctx, root } = await setup(`touch ${probe} || exit 3`);
    const outcome = await reconcile(ctx);
    assert.equal(outcome.result, 'invalid');
    assert.equal(outcome.error?.code, 'HOOK_FAILED');
    assert.match(outcome.error?.message ?? '', /pre-apply hook roles\/app\/hooks\/pre\.sh of role app exited 3: .*Read-only file system/);
    await assert.rejects(stat(probe), { code: 'ENOENT' });
    await assert.rejects(stat(join(root, 'etc/tmpfiles.d/edge-motd.conf')), { code: 'ENOENT' });
  });
});
