/** Which kinds a revision must validate again: only those with a file that changed against the live generation. */
import assert from 'node:assert/strict';
import { inventoryOf } from '../../../reconciler/state/inventory.js';
import { changedKinds } from '../../../reconciler/stages/validate.js';
import type { RenderedFile } from '../../../renderers/types.js';

function file(path: string, kind: RenderedFile['kind'], content: string): RenderedFile {
  return { path, kind, content, mode: 0o644, owner: 'root', group: 'root', resource: `r/${kind}/${path}`, source: { file: 'roles/r/role.yaml' }, sensitive: false, secrets: [], adopt: false };
}

describe('changedKinds', () => {
  const live = [file('/etc/caddy/Caddyfile', 'caddy', 'a'), file('/etc/systemd/system/a.service', 'systemd-unit', 'u'), file('/etc/edge-reconciler/env/a.env', 'env-file', 'X=1')];

  it('validates every kind on a fresh host', () => {
    assert.deepEqual([...changedKinds(live, undefined)].sort(), ['caddy', 'env-file', 'systemd-unit']);
  });

  it('validates nothing when nothing changed', () => {
    assert.deepEqual([...changedKinds(live, inventoryOf(live))], []);
  });

  it('validates only the kind whose file changed', () => {
    const next = [live[0] as RenderedFile, live[1] as RenderedFile, file('/etc/edge-reconciler/env/a.env', 'env-file', 'X=2')];
    assert.deepEqual([...changedKinds(next, inventoryOf(live))], ['env-file']);
  });

  it('validates the kind of a file that goes away, and of a new one', () => {
    const next = [live[1] as RenderedFile, live[2] as RenderedFile, file('/etc/systemd/system/b.service', 'systemd-unit', 'v')];
    assert.deepEqual([...changedKinds(next, inventoryOf(live))].sort(), ['caddy', 'systemd-unit']);
  });
});
