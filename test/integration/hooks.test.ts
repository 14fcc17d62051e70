/**
 * The repo's hooks through a real reconcile (systemctl recorded, hooks run for real from the git revision):
 * the EDGE_* contract, and a failing pre-apply hook that stops the run before any change.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
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

  async function setup(preExit: number) {
    const out = await mkdtemp(join(tmpdir(), 'edge-hooks-out-'));
    const repo = await writeTinyRepo({
      role: {
        resources: [{ kind: 'file', name: 'motd', target: '/etc/tmpfiles.d/edge-motd.conf', content: 'd /run/edge 0755 root root -\n' }],
        hooks: { 'pre-apply': 'hooks/pre.sh', 'post-apply': 'hooks/post.sh' },
      },
    });
    await mkdir(join(repo, 'roles/app/hooks'), { recursive: true });
    await writeFile(join(repo, 'roles/app/hooks/pre.sh'), `#!/bin/sh\necho "pre $EDGE_PHASE" > ${out}/pre\nexit ${preExit}\n`, { mode: 0o755 });
    await writeFile(
      join(repo, 'roles/app/hooks/post.sh'),
      `#!/bin/sh\necho "$EDGE_PHASE $EDGE_REVISION $EDGE_GENERATION $EDGE_RESULT $EDGE_HOST" > ${out}/post\n`,
      { mode: 0o755 },
    );
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'add', '-A');
    await git(repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'hooks');
    const root = await mkdtemp(join(tmpdir(), 'edge-root-'));
    const stateDir = await mkdtemp(join(tmpdir(), 'edge-state-'));
    cleanup.push(out, repo, root, stateDir);
    const ctx = shimContext({ root, store: new StateStore(stateDir), repo });
    return { ctx, out, root, revision: await git(repo, 'rev-parse', 'HEAD') };
  }

  it('runs pre-apply and post-apply hooks with the EDGE_* variables', async () => {
    const { ctx, out, revision } = await setup(0);
    const outcome = await reconcile(ctx);
    assert.equal(outcome.result, 'applied', outcome.error?.message);
    assert.equal(await readFile(join(out, 'pre'), 'utf8'), 'pre pre-apply\n');
    assert.equal(await readFile(join(out, 'post'), 'utf8'), `post-apply ${revision} 1 success ${TINY_HOST}\n`);
  });

  it('stops before any change when a pre-apply hook fails', async () => {
    const { ctx, root } = await setup(3);
    const outcome = await reconcile(ctx);
    assert.equal(outcome.result, 'invalid');
    assert.equal(outcome.error?.code, 'HOOK_FAILED');
    await assert.rejects(stat(join(root, 'etc/tmpfiles.d/edge-motd.conf')), { code: 'ENOENT' });
  });
});
