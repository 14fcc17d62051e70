/** The plan stage refuses owners and groups the host does not have, instead of letting apply give the file to root. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidRevisionError } from '../../../reconciler/errors.js';
import { Host } from '../../../reconciler/host/host.js';
import { planHost } from '../../../reconciler/stages/plan.js';
import type { RenderedFile } from '../../../renderers/types.js';

function file(path: string, owner: string, group: string): RenderedFile {
  return {
    path,
    kind: 'file',
    content: 'x\n',
    mode: 0o644,
    owner,
    group,
    resource: `app/file/${path}`,
    source: { file: 'roles/app/role.yaml', line: 4, path: '/resources/1' },
    sensitive: false,
    secrets: [],
    adopt: false,
  };
}

describe('plan stage: owners', () => {
  let root: string;
  const ids = { uid: (name: string) => (name === 'root' ? 0 : undefined), gid: (name: string) => (name === 'root' ? 0 : name === 'adm' ? 4 : undefined) };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-plan-owners-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a user or group the host does not have as OWNER_UNKNOWN, naming the declaration', async () => {
    const files = [file('/etc/logrotate.d/a', 'lod', 'adm'), file('/etc/logrotate.d/b', 'root', 'nosuchgroup'), file('/etc/logrotate.d/c', 'root', 'adm')];
    await assert.rejects(planHost('h', files, new Host(root, ids)), (error: unknown) => {
      assert.ok(error instanceof InvalidRevisionError);
      assert.equal(error.stage, 'plan');
      assert.deepEqual(
        error.problems.map((p) => [p.code, p.file, p.line, p.message]),
        [
          ['OWNER_UNKNOWN', 'roles/app/role.yaml', 4, '/etc/logrotate.d/a is owned by user "lod", which this host does not have: create it first, or use one it has'],
          ['OWNER_UNKNOWN', 'roles/app/role.yaml', 4, '/etc/logrotate.d/b is owned by group "nosuchgroup", which this host does not have: create it first, or use one it has'],
        ],
      );
      return true;
    });
  });

  it('plans files whose owners exist', async () => {
    const plan = await planHost('h', [file('/etc/logrotate.d/c', 'root', 'adm')], new Host(root, ids));
    assert.equal(plan.changes[0]?.action, 'create');
  });
});
