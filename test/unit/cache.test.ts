/**
 * The content-addressed caches (reconciler/cache/): a cached run gives exactly what a full run gives; a changed
 * template, var, secret or engine version is rendered again; a damaged cache is detected and never used;
 * passing validator verdicts are reused only for the same files; a managed file whose stat changed is read again.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appName, changeOneApp, generateWorkload } from '../../bench/generate.js';
import { memoryCaches, openCaches, type Caches } from '../../reconciler/cache/caches.js';
import { CachePack, cacheKey, digestOf, REWRITE_SHARE } from '../../reconciler/cache/pack.js';
import { ReadLog, readsHold, tracked } from '../../reconciler/cache/tracked-values.js';
import { isJsonSafe } from '../../reconciler/cache/yaml-cache.js';
import { Host } from '../../reconciler/host/host.js';
import { DEFAULT_PATH_POLICY } from '../../reconciler/host/path-policy.js';
import type { DesiredState } from '../../reconciler/model.js';
import { loadDesiredState } from '../../reconciler/stages/load.js';
import { renderHost } from '../../reconciler/stages/render.js';
import { collectValidationProblems } from '../../reconciler/stages/validate.js';
import { inventoryOf } from '../../reconciler/state/inventory.js';
import { LiveStats, RACY_NS } from '../../reconciler/state/live-stats.js';
import type { SecretSource } from '../../renderers/template.js';
import type { RenderedFile } from '../../renderers/types.js';
import { EXAMPLE_REPO } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

const HOST = 'bench-host';

function secretsOf(values: Record<string, string>): SecretSource {
  return { get: (name) => values[name] ?? `value-of-${name}`, description: 'test secrets' };
}

function render(state: DesiredState, host: string, secrets: SecretSource, caches?: Caches): RenderedFile[] {
  return renderHost(state, host, secrets, DEFAULT_PATH_POLICY, caches ? { cache: caches.render } : {}).files;
}

/** Plain JSON, so a cached render and a fresh one compare field for field. */
function plain(files: RenderedFile[]): unknown {
  return JSON.parse(JSON.stringify(files));
}

function byPath(files: RenderedFile[], path: string): RenderedFile {
  const file = files.find((candidate) => candidate.path === path);
  assert.ok(file, `no rendered ${path}`);
  return file;
}

describe('content-addressed caches', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-cache-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('renders and loads every host of the example repo exactly as without a cache, the second time from it', async () => {
    const caches = memoryCaches();
    const secrets = secretsOf({});
    const plainState = await loadDesiredState(EXAMPLE_REPO);
    const first = await loadDesiredState(EXAMPLE_REPO, undefined, { cache: caches.yaml });
    const second = await loadDesiredState(EXAMPLE_REPO, undefined, { cache: caches.yaml });
    assert.ok(caches.counters().yaml.hits > 0, 'the second load took its files from the cache');
    for (const state of [first, second]) {
      assert.deepEqual(JSON.parse(JSON.stringify([...state.hosts], null)), JSON.parse(JSON.stringify([...plainState.hosts])));
      assert.deepEqual(JSON.parse(JSON.stringify([...state.roles])), JSON.parse(JSON.stringify([...plainState.roles])));
    }
    for (const host of plainState.hosts.keys()) {
      const expected = plain(render(plainState, host, secrets));
      assert.deepEqual(plain(render(second, host, secrets, caches)), expected, `${host}, filling the cache`);
      const hitsBefore = caches.counters().render.hits;
      assert.deepEqual(plain(render(second, host, secrets, caches)), expected, `${host}, from the cache`);
      assert.ok(caches.counters().render.hits > hitsBefore, `${host} was rendered from the cache`);
    }
  });

  it('renders again only the resource whose var changed, and gives its new content', async () => {
    await generateWorkload(dir, 3);
    const caches = memoryCaches();
    const secrets = secretsOf({});
    const before = render(await loadDesiredState(dir, undefined, { cache: caches.yaml }), HOST, secrets, caches);
    await changeOneApp(dir, 2);
    const state = await loadDesiredState(dir, undefined, { cache: caches.yaml });
    const counted = caches.counters().render;
    const after = render(state, HOST, secrets, caches);
    const delta = { hits: caches.counters().render.hits - counted.hits, misses: caches.counters().render.misses - counted.misses };
    assert.deepEqual(plain(after), plain(render(state, HOST, secrets)), 'the same as a full render');
    assert.match(byPath(after, '/etc/edge-reconciler/env/app-2.env').content, /^APP_RELEASE=r2$/m);
    assert.match(byPath(before, '/etc/edge-reconciler/env/app-2.env').content, /^APP_RELEASE=r1$/m);
    // Only app-2's env file read the changed var; every other resource came from the cache.
    assert.equal(delta.hits, after.length - 1);
  });

  it('renders again when a template, a secret or the host changes', async () => {
    await generateWorkload(dir, 2);
    const caches = memoryCaches();
    const state = await loadDesiredState(dir);
    render(state, HOST, secretsOf({}), caches);

    const rotated = render(state, HOST, secretsOf({ APP_1_TOKEN: 'rotated-token-value' }), caches);
    assert.match(byPath(rotated, '/etc/edge-reconciler/env/app-1.env').content, /^APP_TOKEN=rotated-token-value$/m);

    const template = `roles/${appName(1)}/templates/site.caddy.hbs`;
    const templates = new Map(state.templates);
    templates.set(template, `${templates.get(template) ?? ''}# a new line\n`);
    const edited = render({ ...state, templates }, HOST, secretsOf({}), caches);
    assert.match(byPath(edited, '/etc/caddy/sites/app-1.caddy').content, /# a new line/);

    const host = state.hosts.get(HOST);
    assert.ok(host);
    const renamed = { ...state, hosts: new Map([[HOST, { ...host, address: '100.64.0.77' }]]) };
    assert.deepEqual(plain(render(renamed, HOST, secretsOf({}), caches)), plain(render(renamed, HOST, secretsOf({}))));
  });

  it('rewrites a big pack once a share of it changed, not for every entry a run added', async () => {
    const cacheDir = join(dir, 'packs');
    const first = await CachePack.open(cacheDir, 'test');
    for (let k = 0; k < 300; k++) first.put(`key-${k}`, k);
    await first.save();
    const read = async () => CachePack.open(cacheDir, 'test');
    // Two changes of 300 (one added, one replaced) are under REWRITE_SHARE: the pack stays as it was.
    const second = await read();
    for (let k = 0; k < 300; k++) assert.equal(second.get(`key-${k}`), k);
    second.put('key-300', 300);
    second.put('key-0', 'zero');
    await second.save();
    const third = await read();
    assert.equal(third.get('key-300'), undefined, 'the added entry is made again next time');
    assert.equal(third.get('key-0'), 0);
    // Enough changes (here: entries no longer used, dropped) and it is rewritten with what this run used.
    for (let k = 1; k < 290; k++) third.get(`key-${k}`);
    await third.save();
    const fourth = await read();
    assert.equal(fourth.get('key-1'), 1);
    assert.equal(fourth.get('key-295'), undefined, 'entries the run did not use are dropped');
    assert.ok(300 * REWRITE_SHARE > 2 && 300 * REWRITE_SHARE <= 10, 'the shares this test counts on');
  });

  it('keeps entries on disk, checks each by its hash, and ignores a damaged entry or another engine version', async () => {
    await generateWorkload(join(dir, 'repo'), 2);
    const cacheDir = join(dir, 'cache');
    const state = await loadDesiredState(join(dir, 'repo'));
    const secrets = secretsOf({});
    const expected = plain(render(state, HOST, secrets));
    const writer = await openCaches(cacheDir);
    render(state, HOST, secrets, writer);
    assert.equal(await writer.save(), undefined);

    const reader = await openCaches(cacheDir);
    assert.deepEqual(plain(render(state, HOST, secrets, reader)), expected);
    assert.equal(reader.counters().render.misses, 0, 'every resource came from disk');

    // Damage one entry's text (a bit flip on disk): the pack's hash no longer matches; nothing of it is used.
    const file = join(cacheDir, 'render.json');
    const text = await readFile(file, 'utf8');
    assert.match(text, /reverse_proxy 127\.0\.0\.1:/);
    await writeFile(file, text.replace('reverse_proxy 127.0.0.1:', 'reverse_proxy 10.6.6.6:'));
    const damaged = await openCaches(cacheDir);
    assert.deepEqual(plain(render(state, HOST, secrets, damaged)), expected);
    assert.equal(damaged.counters().render.corrupt, 1);
    assert.equal(damaged.counters().render.hits, 0);

    // A pack written by another engine version (its hash intact) is not read at all.
    const [, header = '', ...entries] = text.split('\n');
    const otherBody = [header.replace(/"engine":"[^"]*"/, '"engine":"0.0.0-other"'), ...entries].join('\n');
    await writeFile(file, `${digestOf(otherBody)}\n${otherBody}`);
    const other = await openCaches(cacheDir);
    assert.deepEqual(plain(render(state, HOST, secrets, other)), expected);
    assert.equal(other.counters().render.hits, 0);

    // A torn pack (a crash mid-write would leave only a temp file, but a disk can lie) is an empty one.
    await writeFile(file, '{"format":1,"engine"');
    assert.deepEqual(plain(render(state, HOST, secrets, await openCaches(cacheDir))), expected);
  });

  it('checks the repo schemas with cached standalone code exactly as with compiled schemas', async () => {
    const { writeTinyRepo } = await import('../helpers/tiny-repo.js');
    const repo = await writeTinyRepo({
      role: { resources: [{ kind: 'systemd-unit', name: 'a.service', content: 'x', enable: 'yes' }], colour: 'red' },
      host: { standby: 'no' },
    }, dir);
    const problemsWith = async (caches?: Caches) => {
      try {
        const validators = (await caches?.repoValidators())?.validators;
        await loadDesiredState(repo, undefined, validators ? { validators: () => validators } : {});
        return [];
      } catch (error) {
        return (error as { problems: unknown[] }).problems;
      }
    };
    const expected = await problemsWith();
    assert.ok(expected.length >= 3);
    const cacheDir = join(dir, 'cache');
    const writer = await openCaches(cacheDir);
    assert.deepEqual(await problemsWith(writer), expected, 'compiled to standalone code');
    assert.equal(await writer.save(), undefined);
    const reader = await openCaches(cacheDir);
    assert.deepEqual(await problemsWith(reader), expected, 'loaded from the cached code');
    const { validators, origin } = await reader.repoValidators();
    assert.equal(origin, 'cache');
    assert.deepEqual(await loadDesiredState(EXAMPLE_REPO, undefined, { validators: () => validators }).then((state) => [...state.hosts.keys()]), [
      'caddy-router',
      'lod-prod',
      'lod-standby',
      'model-gateway',
    ]);
  });

  it('keeps only YAML values that JSON carries exactly', () => {
    assert.equal(isJsonSafe({ a: [1, 'x', true, null, { b: 2.5 }] }), true);
    assert.equal(isJsonSafe({ a: Infinity }), false);
    assert.equal(isJsonSafe({ a: Number.NaN }), false);
    assert.equal(isJsonSafe({ a: undefined }), false);
    assert.equal(isJsonSafe({ a: new Date(0) }), false);
  });

  it('keys every entry by the engine version', () => {
    const pack = CachePack.inMemory();
    pack.put(cacheKey('x', 'a'), 1);
    assert.equal(pack.get(cacheKey('x', 'a')), 1);
    assert.notEqual(cacheKey('x', 'a'), cacheKey('x', 'a', ''));
    assert.notEqual(cacheKey('x', 'a'), cacheKey('y', 'a'));
  });

  it('records the values a render read, and holds only while each of them is unchanged', () => {
    const data = { vars: { a: { port: 1 }, b: { port: 2 } }, list: [1, 2] };
    const log = new ReadLog();
    const seen = tracked(data, log, ['data']);
    assert.equal(seen.vars.a.port, 1);
    assert.equal(seen.list.length, 2);
    assert.deepEqual(Object.keys(seen.vars), ['a', 'b']);
    assert.throws(() => {
      (seen.vars as Record<string, unknown>).c = 3;
    }, /may not change/);
    const reads = log.list();
    assert.equal(readsHold(reads, { data }), true);
    assert.equal(readsHold(reads, { data: { ...data, vars: { ...data.vars, b: { port: 5 } } } }), true, 'b.port was not read');
    assert.equal(readsHold(reads, { data: { ...data, vars: { a: { port: 9 }, b: { port: 2 } } } }), false);
    assert.equal(readsHold(reads, { data: { ...data, vars: { ...data.vars, c: {} } } }), false, 'the keys were read');
    assert.equal(readsHold(reads, { data: { ...data, list: [1, 2, 3] } }), false);
  });

  it('answers every kind of read again, through a path that became unreachable and through arrays', () => {
    const data: Record<string, unknown> = { vars: { a: { port: 1, tags: ['x', 'y'] } }, flag: true };
    const log = new ReadLog();
    const seen = tracked(data, log, ['data']) as { vars: { a: { port: number; tags: string[]; absent?: number } }; flag: boolean };
    assert.equal('port' in seen.vars.a, true);
    assert.equal(Object.prototype.hasOwnProperty.call(seen.vars.a, 'absent'), false);
    assert.equal(seen.vars.a.tags[1], 'y');
    assert.deepEqual(Reflect.ownKeys(seen.vars), ['a']);
    assert.equal(seen.flag, true);
    const reads = log.list();
    assert.deepEqual(new Set(reads.map((read) => read.op)), new Set(['get', 'has', 'own', 'keys']));
    const changed = (vars: unknown, flag: unknown = true) => readsHold(reads, { data: { vars, flag } });
    assert.equal(changed({ a: { port: 1, tags: ['x', 'y'] } }), true);
    assert.equal(changed({ a: { port: 2, tags: ['x', 'y'] } }), true, 'only whether port exists was read');
    assert.equal(changed({ a: { tags: ['x', 'y'] } }), false, '`in` answers otherwise');
    assert.equal(changed({ a: { port: 1, tags: ['x', 'z'] } }), false);
    assert.equal(changed({ a: { port: 1, tags: ['x', 'y'], absent: 3 } }), false, 'own answers otherwise');
    assert.equal(changed({ a: { port: 1, tags: ['x', 'y'] }, b: {} }), false, 'the keys of vars answer otherwise');
    assert.equal(changed({ a: 7 }), false, 'the path below a is unreachable');
    assert.equal(changed(null), false);
    assert.equal(changed({ a: { port: 1, tags: ['x', 'y'] } }, 'yes'), false);
    // A read recorded as unreachable holds while the path stays unreachable.
    const unreachable = [{ op: 'get' as const, path: ['data', 'vars', 'a', 'port'], answer: '\0unreachable' }];
    assert.equal(readsHold(unreachable, { data: { vars: 3 } }), true);
    assert.equal(readsHold(unreachable, { data: { vars: { a: { port: 1 } } } }), false);
    assert.equal(readsHold([{ ...unreachable[0], answer: '1' }], { data: { vars: { a: { port: 1 } } } }), true);
    assert.equal(readsHold([{ ...unreachable[0], answer: '1' }], { data: { vars: 3 } }), false, 'unreachable half-way');
  });

  it('skips a validator only for the exact file set that passed, and runs it again when a file changes', async () => {
    await generateWorkload(dir, 2);
    const caches = memoryCaches();
    const state = await loadDesiredState(dir);
    const files = render(state, HOST, secretsOf({}));
    assert.deepEqual(await collectValidationProblems(state, files, { verdicts: caches.verdicts }), []);
    const stored = caches.counters().verdicts;
    assert.deepEqual(await collectValidationProblems(state, files, { verdicts: caches.verdicts }), []);
    assert.ok(caches.counters().verdicts.hits > stored.hits, 'the second run reused the verdicts');

    const broken = files.map((file) => (file.path === '/etc/caddy/sites/app-1.caddy' ? { ...file, content: `${file.content}\nnot caddy {{{\n` } : file));
    const problems = await collectValidationProblems(state, broken, { verdicts: caches.verdicts });
    assert.ok(problems.some((problem) => problem.code.startsWith('CADDY')), JSON.stringify(problems));
  });

  it('shares a Caddyfile verdict with files that differ only in a comment line, never with one that differs in a directive', async () => {
    await generateWorkload(dir, 2);
    const caches = memoryCaches();
    const state = await loadDesiredState(dir);
    const files = render(state, HOST, secretsOf({}));
    const withMain = (edit: (text: string) => string) => files.map((file) => (file.path === '/etc/caddy/Caddyfile' ? { ...file, content: edit(file.content) } : file));
    assert.deepEqual(await collectValidationProblems(state, files, { verdicts: caches.verdicts }), []);
    const first = caches.counters().verdicts;
    // Another host's Caddyfile: its comment names that host, and it has a comment line more.
    const commented = withMain((text) => `${text.replace(HOST, 'edge-017')}\n\t# added by hand\n`);
    assert.deepEqual(await collectValidationProblems(state, commented, { verdicts: caches.verdicts }), []);
    const second = caches.counters().verdicts;
    assert.equal(second.misses, first.misses, 'no verdict was missing: caddy did not run again');
    assert.ok(second.hits > first.hits);
    const otherAdmin = withMain((text) => text.replace('admin localhost:2019', 'admin localhost:2020'));
    assert.notEqual(otherAdmin.find((file) => file.path === '/etc/caddy/Caddyfile')?.content, files.find((file) => file.path === '/etc/caddy/Caddyfile')?.content);
    assert.deepEqual(await collectValidationProblems(state, otherAdmin, { verdicts: caches.verdicts }), []);
    assert.ok(caches.counters().verdicts.misses > second.misses, 'a changed directive is validated again');
  });

  it('reads a managed file again once its stat changed, and trusts an unchanged stat only after a full match', async () => {
    const root = join(dir, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    const host = new Host(root);
    const file: RenderedFile = {
      path: '/etc/app.conf',
      content: 'port=1\n',
      mode: 0o644,
      owner: 'root',
      group: 'root',
      kind: 'file',
      resource: 'app/file/conf',
      source: { file: 'roles/app/role.yaml' },
      sensitive: false,
      secrets: [],
      adopt: false,
    };
    await writeFile(join(root, 'etc/app.conf'), file.content, { mode: 0o644 });
    const [entry] = inventoryOf([file]);
    assert.ok(entry);
    const cacheDir = join(dir, 'cache');
    // A stat is recorded only once it is older than the racy window.
    await until('the file is older than the racy window', async () => ((await ageMs(join(root, 'etc/app.conf'))) > Number(RACY_NS) / 1e6 ? true : undefined));
    const first = await LiveStats.open(host, cacheDir);
    assert.equal(await first.unchanged(entry), false, 'nothing recorded yet');
    assert.equal(await first.anyDrift([entry]), false);
    await first.save();

    const second = await LiveStats.open(host, cacheDir);
    assert.equal(await second.unchanged(entry), true, 'the recorded stat vouches for the content');

    // Same size, new bytes: the stat (ctime, mtime) changed, so the file is read and the drift found.
    await writeFile(join(root, 'etc/app.conf'), 'port=2\n');
    const third = await LiveStats.open(host, cacheDir);
    assert.equal(await third.unchanged(entry), false);
    assert.equal(await third.anyDrift([entry]), true);
  });

  it('vouches for an app\'s current link by its stat and its release dir, and sees a relinked or missing release', async () => {
    const root = join(dir, 'root');
    const app = join(root, 'srv/apps/lod');
    await mkdir(join(app, 'releases/aaa'), { recursive: true });
    await mkdir(join(app, 'releases/bbb'), { recursive: true });
    await symlink('releases/aaa', join(app, 'current'));
    const host = new Host(root);
    const link: RenderedFile = {
      path: '/srv/apps/lod/current',
      content: 'releases/aaa',
      mode: 0o777,
      owner: 'root',
      group: 'root',
      kind: 'app',
      resource: 'lod/app/lod',
      source: { file: 'roles/lod/role.yaml' },
      sensitive: false,
      secrets: [],
      adopt: false,
      link: true,
    };
    const [entry] = inventoryOf([link]);
    assert.ok(entry);
    const cacheDir = join(dir, 'cache');
    await until('the link is older than the racy window', async () => ((await linkAgeMs(join(app, 'current'))) > Number(RACY_NS) / 1e6 ? true : undefined));
    const first = await LiveStats.open(host, cacheDir);
    assert.equal(await first.anyDrift([entry]), false);
    await first.save();
    assert.equal(await (await LiveStats.open(host, cacheDir)).unchanged(entry), true, 'the recorded lstat vouches for the link');

    // The release it names is gone: the stat alone no longer vouches, and the drift is found.
    await rm(join(app, 'releases/aaa'), { recursive: true });
    const missing = await LiveStats.open(host, cacheDir);
    assert.equal(await missing.unchanged(entry), false);
    assert.equal(await missing.anyDrift([entry]), true);

    // Relinked by hand to another release: a new link (another inode), read again, drift.
    await mkdir(join(app, 'releases/aaa'));
    await rm(join(app, 'current'));
    await symlink('releases/bbb', join(app, 'current'));
    const relinked = await LiveStats.open(host, cacheDir);
    assert.equal(await relinked.unchanged(entry), false);
    assert.equal(await relinked.anyDrift([entry]), true);

    // A directory on the way swapped for a symlink to a copy: never vouched for, whatever the stats say.
    await rm(join(app, 'current'));
    await symlink('releases/aaa', join(app, 'current'));
    await until('the link is older than the racy window', async () => ((await linkAgeMs(join(app, 'current'))) > Number(RACY_NS) / 1e6 ? true : undefined));
    const again = await LiveStats.open(host, cacheDir);
    assert.equal(await again.anyDrift([entry]), false);
    await again.save();
    await rename(join(root, 'srv/apps'), join(root, 'srv/elsewhere'));
    await symlink('elsewhere', join(root, 'srv/apps'));
    assert.equal(await (await LiveStats.open(host, cacheDir)).unchanged(entry), false, 'a symlinked /srv/apps vouches for nothing');
  });
});

/** Milliseconds since the link's own last status change (not its target's). */
async function linkAgeMs(path: string): Promise<number> {
  const info = await lstat(path, { bigint: true });
  return Number((BigInt(Date.now()) * 1_000_000n - info.ctimeNs) / 1_000_000n);
}

/** Milliseconds since the file's last status change. */
async function ageMs(path: string): Promise<number> {
  const info = await stat(path, { bigint: true });
  return Number((BigInt(Date.now()) * 1_000_000n - info.ctimeNs) / 1_000_000n);
}
