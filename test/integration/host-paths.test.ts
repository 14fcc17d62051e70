/**
 * The host adapter never works through a symlinked directory: a directory under the root replaced by a symlink
 * to a place outside it makes every operation (the undo path's setAttributes, remove, temp clean-up and reads
 * included) refuse with PATH_SYMLINK naming the link, and leaves what is outside byte for byte as it was.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host, HostBatch, HostPathError, TEMP_PREFIX } from '../../reconciler/host/host.js';
import { compareWithInventory } from '../../reconciler/state/drift.js';
import { sha256 } from '../../reconciler/state/inventory.js';

/** Every entry under `dir` with its mode and content: what must not change. */
async function snapshot(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return Promise.all(
    entries.map(async (entry) => {
      const path = join(entry.parentPath, entry.name);
      const info = await stat(path);
      return `${path} ${(info.mode & 0o7777).toString(8)} ${info.uid}:${info.gid} ${entry.isFile() ? await readFile(path, 'utf8') : ''}`;
    }),
  ).then((lines) => lines.sort());
}

function refusedAt(link: string) {
  return (error: unknown) => {
    assert.ok(error instanceof HostPathError, String(error));
    assert.equal(error.code, 'PATH_SYMLINK');
    assert.match(error.message, new RegExp(`${link} is a symlink`));
    return true;
  };
}

describe('host adapter: no operation goes through a symlinked directory', function () {
  let base: string;
  let root: string;
  let outside: string;
  let host: Host;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-host-paths-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(outside);
    // What an attacker wants to reach: files named like the managed ones, and a temp-named one.
    await writeFile(join(outside, 'Caddyfile'), 'outside caddyfile\n', { mode: 0o644 });
    await writeFile(join(outside, 'lod.env'), 'OUTSIDE=1\n', { mode: 0o600 });
    await writeFile(join(outside, `${TEMP_PREFIX}Caddyfile.0a1b2c3d`), 'outside temp\n', { mode: 0o600 });
    host = new Host(root);
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const plantLink = async (dir: string) => {
    await mkdir(join(root, dir, '..'), { recursive: true });
    await rm(join(root, dir), { recursive: true, force: true });
    await symlink(outside, join(root, dir));
  };

  for (const dir of ['/etc/caddy', '/etc']) {
    describe(`with ${dir} replaced by a symlink to a directory outside the root`, () => {
      beforeEach(async () => {
        await host.writeAtomic('/etc/caddy/Caddyfile', 'live caddyfile\n', 0o644, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
        if (dir === '/etc') {
          await rm(join(root, 'etc'), { recursive: true });
          await mkdir(join(outside, 'caddy'));
          await writeFile(join(outside, 'caddy', 'Caddyfile'), 'outside caddyfile\n', { mode: 0o644 });
        }
        await plantLink(dir);
      });

      it('refuses to remove a file, and the file outside stays', async () => {
        const before = await snapshot(outside);
        await assert.rejects(host.remove('/etc/caddy/Caddyfile'), refusedAt(dir));
        assert.deepEqual(await snapshot(outside), before);
      });

      it('refuses to change mode and owner, and the file outside keeps them', async () => {
        const before = await snapshot(outside);
        await assert.rejects(host.setAttributes('/etc/caddy/Caddyfile', 0o777, 0, 0), refusedAt(dir));
        assert.deepEqual(await snapshot(outside), before);
      });

      it('refuses to clean up temp files, and the temp-named file outside stays', async () => {
        const before = await snapshot(outside);
        await assert.rejects(host.removeTempFiles('/etc/caddy/Caddyfile'), refusedAt(dir));
        assert.deepEqual(await snapshot(outside), before);
      });

      it('refuses to write, and nothing is created outside', async () => {
        const before = await snapshot(outside);
        await assert.rejects(host.writeAtomic('/etc/caddy/Caddyfile', 'new\n', 0o644, 0, 0), refusedAt(dir));
        await assert.rejects(host.writeAtomic('/etc/caddy/sites/new.caddy', 'new\n', 0o644, 0, 0), refusedAt(dir));
        assert.deepEqual(await snapshot(outside), before);
      });

      it('refuses to read what is outside', async () => {
        await assert.rejects(host.read('/etc/caddy/Caddyfile'), refusedAt(dir));
      });

      it('reports the managed file as drifted, without reading it', async () => {
        const entry = { path: '/etc/caddy/Caddyfile', sha256: sha256('outside caddyfile\n'), mode: 0o644, owner: 'root', group: 'root', kind: 'caddy' as const, resource: 'caddy', sensitive: false };
        const drift = await compareWithInventory(host, entry);
        assert.equal(drift?.kind, 'modified');
        assert.match(drift?.state ?? '', /PATH_SYMLINK/);
      });
    });
  }

  describe('within a batch (one transaction)', () => {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const writeIn = async (batch: HostBatch, path: string) => host.commitWrite(await host.stageWrite(path, 'new\n', 0o644, uid, gid, batch), batch);

    for (const [who, share] of [
      ['another user owns', async (dir: string) => chown(dir, 4242, 4242)],
      ['anyone can write', async (dir: string) => chmod(dir, 0o777)],
    ] as const) {
      it(`checks at every step a directory ${who}, and all below it: swapped for a symlink mid-batch, it is refused`, async () => {
        await mkdir(join(root, 'srv/apps/lod/conf'), { recursive: true, mode: 0o755 });
        await share(join(root, 'srv/apps/lod'));
        const batch = new HostBatch();
        await writeIn(batch, '/srv/apps/lod/conf/one.conf');
        await writeIn(batch, '/etc/caddy/Caddyfile');
        for (const [dir, swapped] of [['/srv/apps/lod/conf', '/srv/apps/lod/conf'], ['/srv/apps/lod', '/srv/apps/lod']] as const) {
          await rm(join(root, dir), { recursive: true, force: true });
          await mkdir(join(outside, 'conf'), { recursive: true });
          await symlink(dir.endsWith('conf') ? join(outside, 'conf') : outside, join(root, dir));
          const before = await snapshot(outside);
          await assert.rejects(writeIn(batch, '/srv/apps/lod/conf/two.conf'), refusedAt(swapped));
          await assert.rejects(host.remove('/srv/apps/lod/conf/one.conf', batch), refusedAt(swapped));
          assert.deepEqual(await snapshot(outside), before);
          await rm(join(root, dir));
          await mkdir(join(root, '/srv/apps/lod/conf'), { recursive: true, mode: 0o755 });
          await share(join(root, 'srv/apps/lod'));
        }
        await batch.flush();
        assert.equal(await readFile(join(root, 'etc/caddy/Caddyfile'), 'utf8'), 'new\n');
      });
    }
  });

  it('refuses to change mode and owner through a symlink that stands at the file itself', async () => {
    await mkdir(join(root, 'etc/caddy'), { recursive: true });
    await symlink(join(outside, 'lod.env'), join(root, 'etc/caddy/Caddyfile'));
    await chmod(join(outside, 'lod.env'), 0o600);
    await assert.rejects(host.setAttributes('/etc/caddy/Caddyfile', 0o644, 0, 0), { code: 'PATH_SYMLINK' });
    assert.equal((await stat(join(outside, 'lod.env'))).mode & 0o777, 0o600);
  });

  it('refuses a host path that climbs out of the root', async () => {
    const refused = ['/etc/../../outside/lod.env', 'etc/caddy/Caddyfile', '/etc//caddy/Caddyfile', '/..', '/etc/..', '/./etc', '/etc/.', '/etc/\0x', ''];
    for (const path of refused) {
      await assert.rejects(host.remove(path), { code: 'PATH_TRAVERSAL' });
      assert.throws(() => host.resolve(path), { code: 'PATH_TRAVERSAL' }, path);
    }
    assert.equal(await readFile(join(outside, 'lod.env'), 'utf8'), 'OUTSIDE=1\n');
  });

  it('resolves a normal path under any spelling of the root, as join does, and takes names that only start with dots', () => {
    const paths = ['/etc/caddy/Caddyfile', '/', '/etc/', '/etc/.hidden', '/etc/..hidden', '/etc/a..b/c.', '/srv/app/current'];
    for (const rootSpelling of ['/', '/srv/root', '/srv/root/', '/srv//root/./', 'relative/root', './relative', '.']) {
      const spelled = new Host(rootSpelling);
      for (const path of paths) {
        const expected = rootSpelling === '/' ? path : join(rootSpelling, path);
        assert.equal(spelled.resolve(path), expected, `${rootSpelling} + ${path}`);
      }
    }
  });

  it('reads, writes and removes as before when every directory is real, and a missing one means nothing is there', async () => {
    assert.equal(await host.read('/etc/caddy/Caddyfile'), undefined);
    await host.remove('/etc/caddy/Caddyfile');
    await host.removeTempFiles('/etc/caddy/Caddyfile');
    await host.writeAtomic('/etc/caddy/Caddyfile', 'live\n', 0o640, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    await host.setAttributes('/etc/caddy/Caddyfile', 0o600, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    const live = await host.read('/etc/caddy/Caddyfile');
    assert.equal(live?.type, 'file');
    assert.equal(live?.content.toString(), 'live\n');
    assert.equal(live?.mode, 0o600);
    await host.remove('/etc/caddy/Caddyfile');
    assert.equal(await host.read('/etc/caddy/Caddyfile'), undefined);
  });
});
