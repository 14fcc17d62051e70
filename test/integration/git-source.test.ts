/**
 * The git source against a real smart-HTTP server on 127.0.0.1: the mirror fetches only the watched ref, a tag
 * pattern picks the newest tag by version (or by date), every network operation has a deadline, and a token
 * never leaves the environment of git.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportRevision, type SourceOptions } from '../../reconciler/source/git.js';
import { parseLsRemoteTags, tagCandidates } from '../../reconciler/source/git-refs.js';
import { createUpstream, startGitHttpServer, startSilentServer, type GitHttpServer, type Upstream } from '../helpers/git-server.js';
import { rejection } from '../helpers/assertions.js';

async function inMirror(mirror: string, object: string): Promise<boolean> {
  return (await execa('git', ['-C', mirror, 'cat-file', '-e', `${object}^{commit}`], { reject: false })).exitCode === 0;
}

describe('git source (a real git server on 127.0.0.1)', function () {
  this.timeout(180_000);
  let root: string;
  let state: string;
  let server: GitHttpServer;
  let upstream: Upstream;
  let url: string;

  const options = (extra: Partial<SourceOptions> = {}): SourceOptions => ({
    repo: url,
    mirrorDir: join(state, 'repo.git'),
    stagingParent: join(state, 'staging'),
    timeoutMs: 20_000,
    ...extra,
  });

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-upstream-'));
    state = await mkdtemp(join(tmpdir(), 'edge-state-'));
    server = await startGitHttpServer(root);
    upstream = await createUpstream(root);
    url = server.url('desired.git');
  });
  afterEach(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  });

  it('mirrors the watched branch over http and exports its committed tree', async () => {
    const first = await upstream.commit('first', { 'edge.yaml': 'version: 1\n', 'hosts/a.yaml': 'address: 100.64.0.1\n' });
    await upstream.push('release');
    const exported = await exportRevision(options({ ref: 'release' }));
    assert.equal(exported.revision, first);
    assert.equal(exported.ref, 'refs/heads/release');
    assert.equal(exported.kind, 'remote');
    assert.equal(exported.tag, undefined);
    assert.equal(exported.files?.get('hosts/a.yaml')?.content.toString(), 'address: 100.64.0.1\n', 'the tree is read into memory');
    await exported.materialize();
    assert.equal(await readFile(join(exported.dir, 'hosts/a.yaml'), 'utf8'), 'address: 100.64.0.1\n', 'and written out on demand');
    assert.ok(server.requests.some((request) => request.path.startsWith('/desired.git/')), 'the fetch went through the server');

    const second = await upstream.commit('second', { 'hosts/a.yaml': 'address: 100.64.0.2\n' });
    await upstream.push('release');
    const next = await exportRevision(options({ ref: 'release' }));
    assert.equal(next.revision, second);
    assert.equal(next.files?.get('hosts/a.yaml')?.content.toString(), 'address: 100.64.0.2\n');
  });

  it('fetches only the watched ref: other branches and tags stay out of the mirror', async () => {
    const released = await upstream.commit('released');
    await upstream.push('release');
    await upstream.git(['checkout', '-q', '-b', 'feature']);
    const feature = await upstream.commit('work in progress');
    await upstream.git(['tag', '-a', '-m', 'tagged', 'prod-9.9.9']);
    await upstream.push('feature', 'prod-9.9.9');

    const exported = await exportRevision(options({ ref: 'release' }));
    const mirror = join(state, 'repo.git');
    assert.equal(exported.revision, released);
    assert.equal(await inMirror(mirror, released), true);
    assert.equal(await inMirror(mirror, feature), false);
    const refs = (await execa('git', ['-C', mirror, 'for-each-ref', '--format=%(refname)'])).stdout.split('\n');
    assert.deepEqual(refs, ['refs/edge/watched']);
  });

  it('follows a tag named in full (refs/tags/<name>) as a tag', async () => {
    const tagged = await upstream.commit('tagged');
    await upstream.git(['tag', '-a', '-m', 'v1', 'v1']);
    await upstream.push('release', 'v1');
    const exported = await exportRevision(options({ ref: 'refs/tags/v1' }));
    assert.equal(exported.revision, tagged);
    assert.equal(exported.ref, 'refs/tags/v1');
    assert.equal(exported.tag, 'v1');
  });

  it('refuses a watched tag that names a tree, not a commit, and names it', async () => {
    await upstream.commit('tagged');
    const tree = await upstream.git(['rev-parse', 'HEAD^{tree}']);
    await upstream.git(['tag', '-a', '-m', 'a tree', 'tree-tag', tree]);
    await upstream.push('release', 'tree-tag');
    const error = await rejection(exportRevision(options({ ref: 'refs/tags/tree-tag' })));
    assert.equal(error.retry, 'refused');
    assert.match(error.message, /refs\/tags\/tree-tag from .* is not a commit/);
  });

  it('a tag pattern applies the highest version, numerically, and ignores tags that do not match', async () => {
    const v9 = await upstream.commit('1.2.9');
    await upstream.git(['tag', '-a', '-m', 'r', 'prod-1.2.9']);
    const v10 = await upstream.commit('1.2.10');
    await upstream.git(['tag', '-a', '-m', 'r', 'prod-1.2.10']);
    await upstream.git(['tag', 'prod-latest']);
    await upstream.push('release', '--tags');
    // Newer tags that must not win: another prefix, and a name under prod-*/ (a `*` never crosses a slash).
    await upstream.git(['checkout', '-q', '-b', 'side']);
    const side = await upstream.commit('side');
    await upstream.git(['tag', '-a', '-m', 'r', 'staging-9.9.9']);
    await upstream.git(['tag', '-a', '-m', 'r', 'prod-x/9.9.9']);
    await upstream.push('side', '--tags');

    const exported = await exportRevision(options({ tagPattern: 'prod-*' }));
    assert.equal(exported.revision, v10);
    assert.equal(exported.ref, 'refs/tags/prod-1.2.10');
    assert.equal(exported.tag, 'prod-1.2.10');
    const mirror = join(state, 'repo.git');
    assert.equal(await inMirror(mirror, v9), true, 'the history of the chosen tag is fetched');
    assert.equal(await inMirror(mirror, side), false, 'tags that lost are not fetched');
    assert.equal((await execa('git', ['-C', mirror, 'cat-file', '-t', 'refs/tags/prod-1.2.10'])).stdout, 'tag');
  });

  it('a tag pattern orders date-style versions field by field (2026.11.27.1 > 2026.11.9.3)', async () => {
    const late = await upstream.commit('late');
    await upstream.git(['tag', 'prod-2026.11.27.1']);
    await upstream.commit('early but committed later');
    await upstream.git(['tag', 'prod-2026.11.9.3']);
    await upstream.push('release', '--tags');
    const exported = await exportRevision(options({ tagPattern: 'refs/tags/prod-*' }));
    assert.equal(exported.revision, late);
    assert.equal(exported.tag, 'prod-2026.11.27.1');
  });

  it('a tag pattern whose tags carry no version applies the newest by tagger date', async () => {
    const older = await upstream.commit('older');
    await upstream.git(['tag', '-a', '-m', 'r', 'prod-zulu'], { GIT_COMMITTER_DATE: '2026-01-01T10:00:00Z' });
    const newer = await upstream.commit('newer');
    await upstream.git(['tag', '-a', '-m', 'r', 'prod-alpha', older], { GIT_COMMITTER_DATE: '2026-03-01T10:00:00Z' });
    await upstream.push('release', '--tags');
    const exported = await exportRevision(options({ tagPattern: 'prod-*' }));
    assert.equal(exported.tag, 'prod-alpha', 'the newest tag by date wins, whatever its name or commit');
    assert.equal(exported.revision, older);
    assert.notEqual(exported.revision, newer);
  });

  it('a tag pattern nothing matches is refused until a tag arrives', async () => {
    await upstream.commit('untagged');
    await upstream.git(['tag', 'staging-1.0.0']);
    await upstream.push('release', '--tags');
    const error = await rejection(exportRevision(options({ tagPattern: 'prod-*' })));
    assert.equal(error.code, 'NO_MATCHING_TAG');
    assert.equal(error.retry, 'refused');
    assert.match(error.message, /no tag of .*desired\.git matches prod-\*/);
  });

  it('refuses a source with both a ref and a tag pattern', async () => {
    const error = await rejection(exportRevision(options({ ref: 'release', tagPattern: 'prod-*' })));
    assert.equal(error.code, 'FETCH_FAILED');
    assert.equal(error.retry, 'invalid');
  });

  it('times out a fetch and a tag listing against a server that never answers (FETCH_TIMEOUT, transient)', async () => {
    const silent = await startSilentServer();
    try {
      const repo = `http://127.0.0.1:${silent.port}/desired.git`;
      for (const extra of [{ ref: 'release' }, { tagPattern: 'prod-*' }]) {
        // Long enough for git to start and connect on a loaded machine; the server never answers, so it always times out.
        const error = await rejection(exportRevision(options({ repo, timeoutMs: 3_000, ...extra })));
        assert.equal(error.code, 'FETCH_TIMEOUT');
        assert.equal(error.stage, 'fetch');
        assert.equal(error.retry, 'transient');
        assert.match(error.message, /did not finish within 3000 ms/);
      }
      assert.ok(silent.received.some((text) => text.startsWith('GET /desired.git/info/refs')), 'git did connect');
    } finally {
      await silent.close();
    }
  });

  it('runs ssh with the deploy key in batch mode, and times it out like any fetch', async () => {
    const silent = await startSilentServer();
    try {
      const key = join(state, 'deploy_key');
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      const knownHosts = join(state, 'known_hosts');
      await writeFile(knownHosts, '');
      const repo = `ssh://git@127.0.0.1:${silent.port}/desired.git`;
      const error = await rejection(exportRevision(options({ repo, ref: 'release', timeoutMs: 5_000, auth: { sshKeyFile: key, knownHostsFile: knownHosts } })));
      assert.equal(error.code, 'FETCH_TIMEOUT');
      assert.ok(silent.received.some((text) => text.startsWith('SSH-2.0-')), 'ssh connected to the server and sent its banner');

      const missing = await rejection(exportRevision(options({ repo, ref: 'release', auth: { sshKeyFile: join(state, 'no-such-key') } })));
      assert.equal(missing.code, 'FETCH_FAILED');
      assert.match(missing.message, /cannot read the ssh key file .*no-such-key \(ENOENT\)/);
    } finally {
      await silent.close();
    }
  });

  describe('with a token', () => {
    const TOKEN = 'ghp_TokenValueThatMustNeverLeak1234567890';
    let guarded: GitHttpServer;
    let tokenFile: string;

    beforeEach(async () => {
      guarded = await startGitHttpServer(root, { token: TOKEN });
      tokenFile = join(state, 'token');
      await writeFile(tokenFile, `${TOKEN}\n`);
      await chmod(tokenFile, 0o600);
      await upstream.commit('first');
      await upstream.push('release');
    });
    afterEach(() => guarded.close());

    it('authenticates with the token file as an http header', async () => {
      const exported = await exportRevision(options({ repo: guarded.url('desired.git'), ref: 'release', auth: { tokenFile } }));
      assert.equal(exported.revision, await upstream.git(['rev-parse', 'HEAD']));
      assert.ok(guarded.requests.length > 0 && guarded.requests.every((request) => request.authorized));
      assert.ok(guarded.requests.every((request) => !request.path.includes(TOKEN)));
      const config = await readFile(join(state, 'repo.git', 'config'), 'utf8');
      assert.ok(!config.includes(TOKEN), 'the token is not written into the mirror');
    });

    it('is refused without the token, and a failing fetch never shows the token', async () => {
      const error = await rejection(exportRevision(options({ repo: guarded.url('desired.git'), ref: 'release' })));
      assert.equal(error.code, 'FETCH_FAILED');

      await writeFile(tokenFile, 'wrong-token-value\n');
      const wrong = await rejection(exportRevision(options({ repo: guarded.url('desired.git'), ref: 'release', auth: { tokenFile } })));
      assert.equal(wrong.code, 'FETCH_FAILED');
      assert.match(wrong.message, /cannot fetch refs\/heads\/release from http:\/\/127\.0\.0\.1:\d+\/desired\.git/);

      // A server that hangs up: the token was sent, and still appears nowhere in the error.
      await writeFile(tokenFile, `${TOKEN}\n`);
      const silent = await startSilentServer();
      try {
        const timedOut = await rejection(
          exportRevision(options({ repo: `http://127.0.0.1:${silent.port}/desired.git`, ref: 'release', timeoutMs: 3_000, auth: { tokenFile } })),
        );
        assert.equal(timedOut.code, 'FETCH_TIMEOUT');
        const basic = Buffer.from(`x-access-token:${TOKEN}`).toString('base64');
        assert.ok(silent.received.some((text) => text.includes(`Authorization: Basic ${basic}`)), 'the token was sent as a header');
        for (const failure of [wrong, timedOut]) {
          const everything = [failure.message, failure.stack, String(failure.cause), (failure.cause as Error | undefined)?.stack, JSON.stringify(failure)].join('\n');
          assert.ok(!everything.includes(TOKEN) && !everything.includes(basic), `the token leaked into: ${everything}`);
        }
      } finally {
        await silent.close();
      }
    });

    it('refuses a token for a repo that is not an http(s) URL', async () => {
      const error = await rejection(exportRevision(options({ repo: 'ssh://git@127.0.0.1/desired.git', ref: 'release', auth: { tokenFile } })));
      assert.equal(error.retry, 'invalid');
      assert.match(error.message, /auth\.tokenFile is for http\(s\) URLs/);
    });
  });

  it('keeps checkouts and plain directories as they were: committed tree, and tree:<sha256>', async () => {
    const committed = await upstream.commit('committed', { 'edge.yaml': 'version: 1\n' });
    await writeFile(join(upstream.work, 'edge.yaml'), 'version: 2\n');
    const checkout = await exportRevision(options({ repo: upstream.work }));
    assert.equal(checkout.revision, committed);
    assert.equal(checkout.kind, 'checkout');
    assert.equal(checkout.ref, 'refs/heads/release');
    assert.equal(checkout.files?.get('edge.yaml')?.content.toString(), 'version: 1\n');
    await checkout.materialize();
    assert.equal(await readFile(join(checkout.dir, 'edge.yaml'), 'utf8'), 'version: 1\n');

    // A subfolder of the work tree reads that folder; a commit id is its own ref; a name that is also a path, or
    // that names nothing, is asked again step by step.
    const sub = await upstream.commit('sub', { 'site/edge.yaml': 'version: 3\n', 'v2/readme': 'a path named like the tag\n' });
    await upstream.git(['tag', 'v2', committed]);
    const folder = await exportRevision(options({ repo: join(upstream.work, 'site') }));
    assert.equal(folder.revision, sub);
    assert.equal(folder.files?.get('edge.yaml')?.content.toString(), 'version: 3\n');
    const byId = await exportRevision(options({ repo: upstream.work, ref: committed }));
    assert.equal(byId.revision, committed);
    assert.equal(byId.ref, committed);
    const ambiguous = await exportRevision(options({ repo: upstream.work, ref: 'v2' }));
    assert.equal(ambiguous.revision, committed);
    assert.equal(ambiguous.ref, 'refs/tags/v2');
    const unknown = await rejection(exportRevision(options({ repo: upstream.work, ref: 'no-such-branch' })));
    assert.match(unknown.message, /cannot resolve no-such-branch in /);

    const plain = await mkdtemp(join(state, 'plain-'));
    await writeFile(join(plain, 'edge.yaml'), 'version: 1\n');
    const copied = await exportRevision(options({ repo: plain }));
    assert.match(copied.revision, /^tree:[0-9a-f]{64}$/);
    assert.equal(copied.kind, 'directory');
    assert.equal(copied.ref, undefined);
  });
});

describe('tag order (the rule of docs/git-source.md)', () => {
  const pick = (names: string[], pattern = 'prod-*') =>
    tagCandidates(names.map((name) => ({ name, object: '0'.repeat(40) })), pattern);

  const cases: [string[], string[], string][] = [
    [['prod-1.2.9', 'prod-1.2.10', 'prod-1.10.0'], ['prod-1.10.0'], 'numeric fields, not text'],
    [['prod-v1.2.0', 'prod-1.3'], ['prod-1.3'], 'an optional v, a missing field is 0'],
    [['prod-1.3.0-rc.1', 'prod-1.2.10'], ['prod-1.3.0-rc.1'], 'a pre-release is above the release before it'],
    [['prod-1.3.0-rc.2', 'prod-1.3.0-rc.10', 'prod-1.3.0'], ['prod-1.3.0'], 'a release is above its pre-releases'],
    [['prod-1.3.0-rc.2', 'prod-1.3.0-rc.10'], ['prod-1.3.0-rc.10'], 'numeric pre-release identifiers compare as numbers'],
    [['prod-1.2', 'prod-1.2.0', 'prod-1.1'], ['prod-1.2', 'prod-1.2.0'], 'equal versions are left to their dates'],
    [['prod-2026.11.27.1', 'prod-2026.11.27.10', 'prod-2026.12.1.1'], ['prod-2026.12.1.1'], 'date-style fields'],
  ];
  for (const [names, expected, why] of cases) {
    it(`${why}: ${names.join(', ')} → ${expected.join(', ')}`, () => {
      const choice = pick(names);
      assert.equal(choice.by, 'version');
      assert.deepEqual(choice.candidates.map((tag) => tag.name).sort(), [...expected].sort());
    });
  }

  it('ignores unversioned tags when others carry a version, and falls back to dates when none does', () => {
    assert.deepEqual(pick(['prod-latest', 'prod-1.0.0']).ignored, ['prod-latest']);
    const dated = pick(['prod-alpha', 'prod-beta']);
    assert.equal(dated.by, 'date');
    assert.equal(dated.candidates.length, 2);
  });

  it('drops advertised tag names git would refuse, so no refspec becomes a pattern', () => {
    const sha = '0'.repeat(40);
    const listed = ['prod-1.0.0', 'prod-*', 'prod-2..0', 'prod-3.0.0.lock', '-prod-4', 'prod-5:x'].map((name) => `${sha}\trefs/tags/${name}`).join('\n');
    assert.deepEqual(parseLsRemoteTags(listed).map((tag) => tag.name), ['prod-1.0.0', '-prod-4']);
  });

  it('matches the whole name, and a * never crosses a slash', () => {
    assert.deepEqual(pick(['prod-1.0.0', 'preprod-2.0.0', 'prod-x/3.0.0', 'prod-4.0.0.bak']).candidates.map((tag) => tag.name), ['prod-1.0.0']);
    assert.deepEqual(pick(['v1.0.0-prod', 'v2.0.0-prod', 'v3.0.0-staging'], 'v*-prod').candidates.map((tag) => tag.name), ['v2.0.0-prod']);
  });
});
