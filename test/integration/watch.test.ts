/**
 * The drift and secrets watchers on real files in temp dirs with real chokidar (inotify): what is reported as
 * drift and what is not, and which secret names a change in the secrets dir reports. No timing asserts: a test
 * waits for the callback (or a settle period well past the debounce, for "nothing happened").
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Host, TEMP_PREFIX, type IdResolver } from '../../reconciler/host/host.js';
import { sha256, type InventoryEntry } from '../../reconciler/state/inventory.js';
import { watchManagedFiles, watchSecrets, type Drift, type DriftWatcher, type SecretsWatcher, type WatchLog } from '../../reconciler/triggers/watch.js';

const DEBOUNCE_MS = 100;
/** Long enough for chokidar's rename grace (100 ms), the debounce and a check, several times over. */
const SETTLE_MS = 800;

const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

/** Records every call of a callback; `next()` waits for the next one (or fails after 60 s: a ceiling, not a timing). */
class Calls<T> {
  readonly all: T[] = [];
  private waiters: ((value: T) => void)[] = [];

  readonly record = (value: T): void => {
    this.all.push(value);
    this.waiters.shift()?.(value);
  };

  next(): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no callback within 60 s (calls so far: ${JSON.stringify(this.all)})`)), 60_000);
      this.waiters.push((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }
}

/** Every owner and group resolves to the test process's own ids, so files it writes match their entries. */
const SELF: IdResolver = { uid: () => process.getuid?.() ?? 0, gid: () => process.getgid?.() ?? 0 };

class RecordingLog implements WatchLog {
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  warn(_object: object, message = ''): void {
    this.warnings.push(message);
  }
  error(_object: object, message = ''): void {
    this.errors.push(message);
  }
}

describe('drift watcher', function () {
  this.timeout(120_000);
  const cleanup: string[] = [];
  let root: string;
  let host: Host;
  let inventory: InventoryEntry[];
  let applying: boolean;
  let drifts: Calls<Drift[]>;
  let log: RecordingLog;
  let watcher: DriftWatcher | undefined;

  /** Writes a file under the root as the agent would and returns its inventory entry. */
  const place = async (path: string, content: string, mode = 0o644): Promise<InventoryEntry> => {
    const real = host.resolve(path);
    await mkdir(dirname(real), { recursive: true });
    await writeFile(real, content);
    await chmod(real, mode);
    return { path, kind: 'file', resource: path, sha256: sha256(content), mode, owner: 'root', group: 'root', sensitive: false };
  };

  const start = async (extra: Partial<Parameters<typeof watchManagedFiles>[0]> = {}) => {
    watcher = await watchManagedFiles({
      host,
      inventory: () => inventory,
      isApplying: () => applying,
      onDrift: drifts.record,
      debounceMs: DEBOUNCE_MS,
      log,
      ...extra,
    });
    return watcher;
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-watch-'));
    cleanup.push(root);
    host = new Host(root, SELF);
    applying = false;
    drifts = new Calls();
    log = new RecordingLog();
    inventory = [
      await place('/etc/caddy/Caddyfile', ':80 {\n  respond "hello"\n}\n'),
      await place('/etc/edge-reconciler/env/app.env', 'TOKEN=one\n', 0o600),
      await place('/etc/systemd/system/app.service', '[Service]\nExecStart=/bin/true\n'),
    ];
  });
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
  });
  after(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('reports a managed file edited by hand, and logs it with the file', async () => {
    await start();
    const reported = drifts.next();
    await writeFile(host.resolve('/etc/caddy/Caddyfile'), ':80 {\n  respond "hacked"\n}\n');
    assert.deepEqual(await reported, [{ path: '/etc/caddy/Caddyfile', kind: 'modified' }]);
    assert.deepEqual(log.warnings, ['managed files drifted from the live generation: /etc/caddy/Caddyfile (modified)']);
  });

  it('does not report a file rewritten with identical bytes', async () => {
    await start();
    await writeFile(host.resolve('/etc/caddy/Caddyfile'), ':80 {\n  respond "hello"\n}\n');
    const later = new Date(Date.now() + 60_000);
    await utimes(host.resolve('/etc/systemd/system/app.service'), later, later);
    await settle();
    assert.deepEqual(drifts.all, []);
  });

  it('reports a chmod as mode drift', async () => {
    await start();
    const reported = drifts.next();
    await chmod(host.resolve('/etc/edge-reconciler/env/app.env'), 0o644);
    assert.deepEqual(await reported, [{ path: '/etc/edge-reconciler/env/app.env', kind: 'mode' }]);
  });

  it('reports an owner that differs from the inventory once an attribute event wakes the watcher', async () => {
    const uid = process.getuid?.() ?? 0;
    host = new Host(root, { uid: (name) => (name === 'other' ? uid + 1 : uid), gid: SELF.gid });
    inventory = inventory.map((entry) => (entry.path === '/etc/caddy/Caddyfile' ? { ...entry, owner: 'other' } : entry));
    await start();
    const reported = drifts.next();
    const real = host.resolve('/etc/caddy/Caddyfile');
    const { uid: live, gid } = await stat(real);
    await chown(real, live, gid);
    assert.deepEqual(await reported, [{ path: '/etc/caddy/Caddyfile', kind: 'owner' }]);
  });

  it('reports a deleted managed file as removed, and a deleted managed dir as its files removed', async () => {
    await start();
    let reported = drifts.next();
    await rm(host.resolve('/etc/systemd/system/app.service'));
    assert.deepEqual(await reported, [{ path: '/etc/systemd/system/app.service', kind: 'removed' }]);
    reported = drifts.next();
    await rm(host.resolve('/etc/caddy'), { recursive: true });
    assert.deepEqual(await reported, [{ path: '/etc/caddy/Caddyfile', kind: 'removed' }]);
  });

  it('detects an editor-style save through a temp file renamed over the target', async () => {
    await start();
    const reported = drifts.next();
    const real = host.resolve('/etc/caddy/Caddyfile');
    await writeFile(`${real}.swp-new`, ':80 {\n  respond "edited"\n}\n');
    await chmod(`${real}.swp-new`, 0o644);
    await rename(`${real}.swp-new`, real);
    assert.deepEqual(await reported, [{ path: '/etc/caddy/Caddyfile', kind: 'modified' }]);
    await settle();
    assert.equal(drifts.all.length, 1, 'the save is reported once');
  });

  it('reports a burst of edits once, and the same drifted state only once', async () => {
    await start();
    const reported = drifts.next();
    const real = host.resolve('/etc/edge-reconciler/env/app.env');
    for (let i = 0; i < 20; i += 1) await writeFile(real, `TOKEN=edit-${i}\n`);
    await writeFile(host.resolve('/etc/caddy/Caddyfile'), 'changed\n');
    assert.deepEqual(await reported, [
      { path: '/etc/caddy/Caddyfile', kind: 'modified' },
      { path: '/etc/edge-reconciler/env/app.env', kind: 'modified' },
    ]);
    await writeFile(real, 'TOKEN=edit-19\n');
    await settle();
    assert.equal(drifts.all.length, 1, JSON.stringify(drifts.all));
  });

  it('ignores the agent\'s own writes: events while applying and its temp files', async () => {
    await start();
    applying = true;
    const next = await place('/etc/caddy/Caddyfile', ':80 {\n  respond "generation 2"\n}\n');
    await writeFile(host.resolve('/etc/systemd/system/app.service'), '[Service]\nExecStart=/bin/false\n');
    await settle();
    assert.deepEqual(drifts.all, [], 'nothing while applying');
    inventory = inventory.map((entry) => (entry.path === next.path ? next : entry));
    inventory = inventory.map((entry) =>
      entry.path === '/etc/systemd/system/app.service' ? { ...entry, sha256: sha256('[Service]\nExecStart=/bin/false\n') } : entry,
    );
    applying = false;
    await watcher!.refresh();
    await writeFile(join(host.resolve('/etc/caddy'), `${TEMP_PREFIX}Caddyfile.0a1b2c3d`), 'half written');
    await settle();
    assert.deepEqual(drifts.all, [], 'the new generation\'s files match its inventory');
  });

  it('reports after refresh() a hand edit made while the agent was applying', async () => {
    await start();
    applying = true;
    await writeFile(host.resolve('/etc/systemd/system/app.service'), '[Service]\nExecStart=/bin/sh -c evil\n');
    await settle();
    assert.deepEqual(drifts.all, []);
    applying = false;
    const reported = drifts.next();
    await watcher!.refresh();
    assert.deepEqual(await reported, [{ path: '/etc/systemd/system/app.service', kind: 'modified' }]);
  });

  it('refresh() watches files new to the inventory and forgets removed ones', async () => {
    await start();
    const added = await place('/etc/app/conf.d/extra.conf', 'extra=1\n');
    inventory = [...inventory.filter((entry) => entry.path !== '/etc/caddy/Caddyfile'), added];
    await watcher!.refresh();
    await writeFile(host.resolve('/etc/caddy/Caddyfile'), 'no longer managed\n');
    await settle();
    assert.deepEqual(drifts.all, [], 'a file dropped from the inventory is not drift');
    const reported = drifts.next();
    await writeFile(host.resolve('/etc/app/conf.d/extra.conf'), 'extra=2\n');
    assert.deepEqual(await reported, [{ path: '/etc/app/conf.d/extra.conf', kind: 'modified' }]);
  });

  it('keeps watching across a refresh() with an unchanged inventory', async () => {
    await start();
    await watcher!.refresh();
    const reported = drifts.next();
    await writeFile(host.resolve('/etc/caddy/Caddyfile'), 'edited\n');
    assert.deepEqual(await reported, [{ path: '/etc/caddy/Caddyfile', kind: 'modified' }]);
  });

  it('watches again a managed dir that was deleted and re-created by a heal', async () => {
    await start();
    const reported = drifts.next();
    await rm(host.resolve('/etc/caddy'), { recursive: true });
    assert.deepEqual(await reported, [{ path: '/etc/caddy/Caddyfile', kind: 'removed' }]);
    applying = true;
    await place('/etc/caddy/Caddyfile', ':80 {\n  respond "hello"\n}\n');
    applying = false;
    await watcher!.refresh();
    const again = drifts.next();
    await writeFile(host.resolve('/etc/caddy/Caddyfile'), 'edited after the heal\n');
    assert.deepEqual(await again, [{ path: '/etc/caddy/Caddyfile', kind: 'modified' }]);
  });

  it('leaves unmanaged files in a watched dir alone', async () => {
    await start();
    await writeFile(host.resolve('/etc/systemd/system/other.service'), '[Service]\n');
    await writeFile(host.resolve('/etc/caddy/Caddyfile.bak'), 'backup\n');
    await settle();
    assert.deepEqual(drifts.all, []);
  });
});

describe('secrets watcher', function () {
  this.timeout(120_000);
  const cleanup: string[] = [];
  let dir: string;
  let changes: Calls<string[]>;
  let watcher: SecretsWatcher | undefined;

  const start = async () => {
    watcher = await watchSecrets({ dir, onChange: changes.record, debounceMs: DEBOUNCE_MS });
    return watcher;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-secrets-'));
    cleanup.push(dir);
    changes = new Calls();
    await writeFile(join(dir, 'db_password'), 'old-password\n', { mode: 0o600 });
    await writeFile(join(dir, 'api_token'), 'token\n', { mode: 0o600 });
  });
  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
  });
  after(async () => {
    await Promise.all(cleanup.map((path) => rm(path, { recursive: true, force: true })));
  });

  it('reports the names of secrets added, changed and removed', async () => {
    await start();
    let reported = changes.next();
    await writeFile(join(dir, 'smtp_password'), 'new\n', { mode: 0o600 });
    assert.deepEqual(await reported, ['smtp_password']);
    reported = changes.next();
    await writeFile(join(dir, 'db_password'), 'rotated-password\n');
    assert.deepEqual(await reported, ['db_password']);
    reported = changes.next();
    await rm(join(dir, 'api_token'));
    assert.deepEqual(await reported, ['api_token']);
  });

  it('reports a rotation written through a temp file and rename, and several rotations at once', async () => {
    await start();
    const reported = changes.next();
    await writeFile(join(dir, '.db_password.tmp'), 'rotated\n', { mode: 0o600 });
    await rename(join(dir, '.db_password.tmp'), join(dir, 'db_password'));
    await writeFile(join(dir, 'api_token'), 'token-2\n');
    assert.deepEqual(await reported, ['api_token', 'db_password']);
    await settle();
    assert.equal(changes.all.length, 1);
  });

  it('reports a secret made readable by others (the next reconcile refuses it)', async () => {
    await start();
    const reported = changes.next();
    await chmod(join(dir, 'api_token'), 0o644);
    assert.deepEqual(await reported, ['api_token']);
  });

  it('stays quiet for an untouched dir, a touch, identical bytes and dotfiles', async () => {
    await start();
    await settle();
    const later = new Date(Date.now() + 60_000);
    await utimes(join(dir, 'db_password'), later, later);
    await writeFile(join(dir, 'api_token'), 'token\n');
    await writeFile(join(dir, '.editor-swap'), 'x');
    await mkdir(join(dir, 'subdir'));
    await settle();
    assert.deepEqual(changes.all, []);
  });

  it('refuses a secrets dir that does not exist, naming it', async () => {
    const missing = join(dir, 'nope');
    await assert.rejects(watchSecrets({ dir: missing, onChange: () => undefined }), { message: `secrets dir ${missing} does not exist; cannot watch it` });
  });
});
