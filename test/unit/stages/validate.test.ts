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

describe('staging for the validators', () => {
  it('stages only the files whose validator reads them: the env files, which hold secrets, never reach it', async () => {
    const { chmod, mkdtemp, readdir, readFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadDesiredState } = await import('../../../reconciler/stages/load.js');
    const { renderHost } = await import('../../../reconciler/stages/render.js');
    const { collectValidationProblems } = await import('../../../reconciler/stages/validate.js');
    const { runTempPrefix } = await import('../../../reconciler/host/run-temp.js');
    const { DEFAULT_PATH_POLICY } = await import('../../../reconciler/host/path-policy.js');
    const { EXAMPLE_REPO } = await import('../../helpers/paths.js');
    const secret = 'staging-must-not-see-this-0123456789';
    const state = await loadDesiredState(EXAMPLE_REPO);
    const render = (host: string) => renderHost(state, host, { get: () => secret, description: 'test secrets' }, DEFAULT_PATH_POLICY).files;
    // lod-prod's files and the router's Caddy files: every kind, and a validator (caddy) with a temp tree of its own.
    const files = [...render('lod-prod'), ...render('caddy-router').filter((file) => file.kind === 'caddy')];
    const kinds = new Set(files.map((file) => file.kind));
    assert.ok(kinds.has('env-file') && kinds.has('systemd-unit') && kinds.has('ufw') && kinds.has('caddy'), [...kinds].join(', '));

    const temp = await mkdtemp(join(tmpdir(), 'edge-staging-test-'));
    // A TMPDIR like /tmp: the confined validators (other users) make their scratch dirs in it too.
    await chmod(temp, 0o1777);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = temp;
    const deferred: (() => Promise<void>)[] = [];
    try {
      // Deferred, as a reconcile does: the temp trees stay until the run ends.
      assert.deepEqual(await collectValidationProblems(state, files, { defer: (cleanup) => deferred.push(cleanup) }), []);
      const left = await readdir(temp);
      const staging = left.find((name) => name.startsWith(runTempPrefix('staging')));
      assert.ok(staging, `no staging dir in ${temp}: ${left.join(', ')}`);
      assert.ok(left.some((name) => name.startsWith(runTempPrefix('caddy'))), `caddy's copy was removed early: ${left.join(', ')}`);
      const staged = (await readdir(join(temp, staging), { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath, entry.name).slice(join(temp, staging).length))
        .sort();
      const expected = files.filter((file) => file.kind === 'systemd-unit' || file.kind === 'ufw').map((file) => file.path).sort();
      assert.deepEqual(staged, expected);
      for (const path of staged) assert.ok(!(await readFile(join(temp, staging, path), 'utf8')).includes(secret), `${path} holds the secret`);
      for (const cleanup of deferred) await cleanup();
      assert.deepEqual(await readdir(temp), []);
      // Not deferred: nothing is left once the validation returns.
      assert.deepEqual(await collectValidationProblems(state, files), []);
      assert.deepEqual(await readdir(temp), []);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      await rm(temp, { recursive: true, force: true });
    }
  });
});
