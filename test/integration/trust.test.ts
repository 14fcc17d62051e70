/**
 * Trust checks on real signed commits and tags, fetched from a real git server on 127.0.0.1: SSH signatures
 * against an allowed_signers file, GPG signatures against a keyring, and monotonicity (a force push is refused
 * unless rewinds are allowed). Keys are made in the test with ssh-keygen and gpg.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportRevision, type ExportedRevision, type SourceOptions } from '../../reconciler/source/git.js';
import { silentLogger, type RunContext, type RunState } from '../../reconciler/run-context.js';
import { StateStore } from '../../reconciler/state/state-store.js';
import { recordRun } from '../../reconciler/state/status.js';
import { fetchRevision } from '../../reconciler/stages/fetch.js';
import { checkMonotonic, checkTrust, isDescendant, verifyRevision, type TrustOptions } from '../../reconciler/source/trust.js';
import { createUpstream, startGitHttpServer, type GitHttpServer, type Upstream } from '../helpers/git-server.js';
import { rejection } from '../helpers/assertions.js';

describe('trust: signatures and monotonic revisions', function () {
  this.timeout(180_000);
  let root: string;
  let state: string;
  let server: GitHttpServer;
  let upstream: Upstream;
  let trustedKey: string;
  let strangerKey: string;
  let allowedSigners: string;
  let keys: string;

  const options = (extra: Partial<SourceOptions> = {}): SourceOptions => ({
    repo: server.url('desired.git'),
    mirrorDir: join(state, 'repo.git'),
    stagingParent: join(state, 'staging'),
    timeoutMs: 20_000,
    ...extra,
  });
  const ssh = (key: string) => ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key}`];
  const commitSignedBy = async (key: string, message: string) => {
    await upstream.git([...ssh(key), 'commit', '-q', '--allow-empty', '-S', '-m', message]);
    return upstream.git(['rev-parse', 'HEAD']);
  };
  const required = (extra: Partial<TrustOptions> = {}): TrustOptions => ({
    requireSignatures: true,
    allowedSignersFile: allowedSigners,
    allowRewinds: false,
    ...extra,
  });

  before(async () => {
    keys = await mkdtemp(join(tmpdir(), 'edge-keys-'));
    trustedKey = join(keys, 'release');
    strangerKey = join(keys, 'stranger');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'release', '-f', trustedKey]);
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'stranger', '-f', strangerKey]);
    allowedSigners = join(keys, 'allowed_signers');
    await writeFile(allowedSigners, `release@example.com ${await readFile(`${trustedKey}.pub`, 'utf8')}`);
  });
  after(() => rm(keys, { recursive: true, force: true }));
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'edge-upstream-'));
    state = await mkdtemp(join(tmpdir(), 'edge-state-'));
    server = await startGitHttpServer(root);
    upstream = await createUpstream(root);
  });
  afterEach(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  });

  describe('ssh signatures on a branch', () => {
    it('accepts a commit signed by a key in allowed_signers and names the signer', async () => {
      const signed = await commitSignedBy(trustedKey, 'signed release');
      await upstream.push('release');
      const exported = await exportRevision(options({ ref: 'release' }));
      assert.equal(exported.revision, signed);
      const verdict = await checkTrust(exported, required());
      assert.equal(verdict.skipped, false);
      assert.match(verdict.signer ?? '', /^release@example\.com \(ED25519 SHA256:/);
    });

    it('refuses an unsigned commit when signatures are required (UNSIGNED), and takes it when they are not', async () => {
      const unsigned = await upstream.commit('unsigned');
      await upstream.push('release');
      const exported = await exportRevision(options({ ref: 'release' }));
      const error = await rejection(checkTrust(exported, required()));
      assert.equal(error.code, 'UNSIGNED');
      assert.equal(error.stage, 'fetch');
      assert.equal(error.retry, 'refused');
      assert.equal(error.message, `revision ${unsigned.slice(0, 12)} has no signature, and signatures are required (trust.requireSignatures)`);
      assert.deepEqual(await checkTrust(exported, required({ requireSignatures: false })), { rewound: false, skipped: false });
    });

    it('refuses a commit signed by a key not in allowed_signers (UNTRUSTED_SIGNATURE)', async () => {
      const stranger = await commitSignedBy(strangerKey, 'signed by someone else');
      await upstream.push('release');
      const exported = await exportRevision(options({ ref: 'release' }));
      const error = await rejection(checkTrust(exported, required()));
      assert.equal(error.code, 'UNTRUSTED_SIGNATURE');
      assert.equal(error.retry, 'refused');
      const fingerprint = (await execa('ssh-keygen', ['-l', '-f', `${strangerKey}.pub`])).stdout.split(' ')[1] as string;
      assert.equal(
        error.message,
        `revision ${stranger.slice(0, 12)} is refused: signed by a key not in allowed_signers (ED25519 ${fingerprint}, file ${allowedSigners})`,
      );

      const unconfigured = await rejection(verifyRevision(exported.gitDir as string, stranger, { requireSignatures: true }));
      assert.match(unconfigured.message, /no allowed_signers file is configured \(trust\.allowedSignersFile\)/);
      const unreadable = await rejection(verifyRevision(exported.gitDir as string, stranger, { requireSignatures: true, allowedSignersFile: join(state, 'missing') }));
      assert.match(unreadable.message, /the allowed_signers file .*missing cannot be read/);
    });
  });

  describe('tag sources', () => {
    it('accepts a signed tag over an unsigned commit', async () => {
      const commit = await upstream.commit('unsigned commit');
      await upstream.git([...ssh(trustedKey), 'tag', '-s', '-m', 'release 1.0.0', 'prod-1.0.0']);
      await upstream.push('release', '--tags');
      const exported = await exportRevision(options({ tagPattern: 'prod-*' }));
      assert.equal(exported.revision, commit);
      const verdict = await checkTrust(exported, required());
      assert.match(verdict.signer ?? '', /^release@example\.com/);
    });

    it('refuses an unsigned tag even over a signed commit, and a lightweight tag', async () => {
      await commitSignedBy(trustedKey, 'signed commit');
      await upstream.git(['tag', '-a', '-m', 'release 1.0.0', 'prod-1.0.0']);
      await upstream.push('release', '--tags');
      const annotated = await rejection(checkTrust(await exportRevision(options({ tagPattern: 'prod-*' })), required()));
      assert.equal(annotated.code, 'UNSIGNED');
      assert.match(annotated.message, /^tag prod-1\.0\.0 \(revision [0-9a-f]{12}\) has no signature/);

      await upstream.git(['tag', 'prod-1.0.1']);
      await upstream.push('--tags');
      const lightweight = await rejection(checkTrust(await exportRevision(options({ tagPattern: 'prod-*' })), required()));
      assert.equal(lightweight.code, 'UNSIGNED');
      assert.match(lightweight.message, /^tag prod-1\.0\.1 \(revision [0-9a-f]{12}\) is a lightweight tag: no signature/);
    });

    it('refuses a trusted signed tag pushed under another name (staging-5.0.0 as prod-5.0.0)', async () => {
      await upstream.commit('staged');
      await upstream.git([...ssh(trustedKey), 'tag', '-s', '-m', 'staging only', 'staging-5.0.0']);
      await upstream.push('release', 'staging-5.0.0:refs/tags/prod-5.0.0');
      const exported = await exportRevision(options({ tagPattern: 'prod-*' }));
      assert.equal(exported.tag, 'prod-5.0.0');
      const error = await rejection(checkTrust(exported, required()));
      assert.equal(error.code, 'UNTRUSTED_SIGNATURE');
      assert.equal(error.retry, 'refused');
      assert.match(error.message, /^tag prod-5\.0\.0 \(revision [0-9a-f]{12}\) is refused: the signed tag object is named "staging-5\.0\.0", not prod-5\.0\.0/);

      const named = await rejection(checkTrust(await exportRevision(options({ ref: 'refs/tags/prod-5.0.0' })), required()));
      assert.equal(named.code, 'UNTRUSTED_SIGNATURE', 'a ref naming the tag is checked the same way');
    });

    it('refuses a tag signed by a stranger', async () => {
      await upstream.commit('commit');
      await upstream.git([...ssh(strangerKey), 'tag', '-s', '-m', 'release', 'prod-2.0.0']);
      await upstream.push('release', '--tags');
      const error = await rejection(checkTrust(await exportRevision(options({ tagPattern: 'prod-*' })), required()));
      assert.equal(error.code, 'UNTRUSTED_SIGNATURE');
      assert.match(error.message, /^tag prod-2\.0\.0 \(revision [0-9a-f]{12}\) is refused: signed by a key not in allowed_signers/);
    });
  });

  describe('gpg signatures', () => {
    let signingHome: string;
    let trustHome: string;
    let fingerprint: string;
    const gpg = (home: string, args: string[], input?: string) =>
      execa('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { GNUPGHOME: home }, input });

    before(async () => {
      const homes = await mkdtemp(join(tmpdir(), 'edge-gpg-'));
      signingHome = join(homes, 'signer');
      trustHome = join(homes, 'trust');
      await mkdir(signingHome, { mode: 0o700 });
      await mkdir(trustHome, { mode: 0o700 });
      await gpg(signingHome, ['--quick-gen-key', 'Release Manager <release@example.com>', 'ed25519', 'sign', 'never']);
      const listing = (await gpg(signingHome, ['--list-keys', '--with-colons'])).stdout;
      fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listing)?.[1] as string;
      const exported = (await gpg(signingHome, ['--armor', '--export', fingerprint])).stdout;
      await gpg(trustHome, ['--import'], exported);
    });
    after(async () => {
      for (const home of [signingHome, trustHome]) await execa('gpgconf', ['--kill', 'all'], { env: { GNUPGHOME: home }, reject: false });
      await rm(join(signingHome, '..'), { recursive: true, force: true });
    });

    it('accepts a commit signed by a key in the keyring of trust.gpgHome, refuses it otherwise', async () => {
      await upstream.git(['-c', 'gpg.format=openpgp', '-c', `user.signingkey=${fingerprint}`, 'commit', '-q', '--allow-empty', '-S', '-m', 'gpg signed'], { GNUPGHOME: signingHome });
      await upstream.push('release');
      const exported = await exportRevision(options({ ref: 'release' }));
      const verdict = await checkTrust(exported, required({ gpgHome: trustHome }));
      assert.match(verdict.signer ?? '', /^Release Manager <release@example\.com> \(gpg [0-9A-F]{16}\)$/);

      const noKeyring = await rejection(checkTrust(exported, required()));
      assert.equal(noKeyring.code, 'UNTRUSTED_SIGNATURE');
      assert.match(noKeyring.message, /signed by a gpg key \([0-9A-F]{16}\), and no gpg keyring is configured \(trust\.gpgHome\)/);

      const otherHome = await mkdtemp(join(tmpdir(), 'edge-gpg-empty-'));
      try {
        const unknown = await rejection(checkTrust(exported, required({ gpgHome: otherHome })));
        assert.match(unknown.message, /signed by a gpg key not in the keyring \([0-9A-F]{16}, GNUPGHOME /);
      } finally {
        await rm(otherHome, { recursive: true, force: true });
      }
    });
  });

  describe('monotonic revisions', () => {
    let first: string;
    let second: string;
    let exportedFirst: ExportedRevision;

    beforeEach(async () => {
      first = await upstream.commit('first');
      await upstream.push('release');
      exportedFirst = await exportRevision(options({ ref: 'release' }));
      second = await upstream.commit('second');
      await upstream.push('release');
    });

    it('accepts a descendant of the last applied revision', async () => {
      const exported = await exportRevision(options({ ref: 'release' }));
      assert.equal(await isDescendant(exported.gitDir as string, first, second), true);
      assert.deepEqual(await checkTrust(exported, { requireSignatures: false, allowRewinds: false, lastApplied: first }), { rewound: false, skipped: false });
    });

    it('refuses a force push (NOT_DESCENDANT), unless rewinds are allowed', async () => {
      await rm(join(state, 'staging'), { recursive: true, force: true });
      const applied = (await exportRevision(options({ ref: 'release' }))).revision;
      assert.equal(applied, second);
      await upstream.git(['reset', '-q', '--hard', first]);
      const rewritten = await upstream.commit('rewritten history');
      await upstream.push('--force', 'release');

      const exported = await exportRevision(options({ ref: 'release' }));
      assert.equal(exported.revision, rewritten);
      const error = await rejection(checkTrust(exported, { requireSignatures: false, allowRewinds: false, lastApplied: applied }));
      assert.equal(error.code, 'NOT_DESCENDANT');
      assert.equal(error.stage, 'fetch');
      assert.equal(error.retry, 'refused');
      assert.equal(
        error.message,
        `revision ${rewritten.slice(0, 12)} does not descend from the last applied ${applied.slice(0, 12)} (a force push or a stale fetch?); revert instead, or set trust.allowRewinds`,
      );
      assert.deepEqual(await checkTrust(exported, { requireSignatures: false, allowRewinds: true, lastApplied: applied }), { rewound: true, skipped: false });
    });

    it('refuses a stale revision (an ancestor of the last applied) and an unknown last applied commit', async () => {
      const stale = await rejection(checkMonotonic(exportedFirst.gitDir as string, second, first, false));
      assert.equal(stale.code, 'NOT_DESCENDANT');
      const unknown = 'f'.repeat(40);
      const gone = await rejection(checkMonotonic(exportedFirst.gitDir as string, unknown, first, false));
      assert.match(gone.message, /the last applied ffffffffffff \(which the mirror no longer has\)/);
      assert.equal(await checkMonotonic(exportedFirst.gitDir as string, undefined, first, false), false, 'nothing applied yet');
      assert.equal(await checkMonotonic(exportedFirst.gitDir as string, `tree:${'0'.repeat(64)}`, first, false), false);
    });

    it('skips checkouts and plain directories', async () => {
      await upstream.git(['reset', '-q', '--hard', first]);
      const checkout = await exportRevision(options({ repo: upstream.work }));
      assert.deepEqual(await checkTrust(checkout, required({ lastApplied: second })), { rewound: false, skipped: true });
    });
  });

  describe('the fetch stage', () => {
    const host = 'test-host';
    const context = (store: StateStore, trust: Partial<TrustOptions>): RunContext =>
      ({
        hostName: host,
        log: silentLogger,
        store,
        source: { repo: server.url('desired.git'), ref: 'release', trust, timeoutMs: 20_000 },
      }) as unknown as RunContext;

    it('checks the signature before reading the tree: an unsigned commit over the size caps is UNSIGNED, a signed one TREE_TOO_LARGE naming the file', async () => {
      const store = new StateStore(state);
      await store.init();
      const big = 'x'.repeat(64 * 1024);
      const unsigned = await upstream.commit('unsigned and big', { 'edge.yaml': 'version: 1\n', 'files/blob.bin': big });
      await upstream.push('release');
      const capped = (trust: Partial<TrustOptions>) => {
        const ctx = context(store, trust);
        return { ...ctx, source: { ...ctx.source, limits: { maxFileBytes: 16 * 1024, maxTreeBytes: 1024 * 1024 } } } as RunContext;
      };
      const refusedState: RunState = { previous: [], commands: [], durations: {} };
      const error = await rejection(fetchRevision(capped(required()), refusedState));
      assert.equal(error.code, 'UNSIGNED', 'the signature is checked first, so the size of the tree does not matter');
      assert.equal(refusedState.revision, unsigned);

      await upstream.git([...ssh(trustedKey), 'commit', '-q', '--allow-empty', '-S', '-m', 'signed and big']);
      await upstream.push('release');
      const tooLarge = await rejection(fetchRevision(capped(required()), { previous: [], commands: [], durations: {} }));
      assert.equal(tooLarge.code, 'TREE_TOO_LARGE');
      assert.equal(tooLarge.retry, 'invalid', 'waits for a new commit instead of retrying forever');
      assert.match(tooLarge.message, /^files\/blob\.bin in [0-9a-f]{40} is 0\.1 MiB, over the limit of 0\.0 MiB per file \(limits\.maxFileBytes\)$/);
      assert.deepEqual(tooLarge.problems.map((problem) => problem.file), ['files/blob.bin']);

      const wholeTree = { ...capped(required()), source: { ...capped(required()).source, limits: { maxFileBytes: 1024 * 1024, maxTreeBytes: 32 * 1024 } } } as RunContext;
      const treeError = await rejection(fetchRevision(wholeTree, { previous: [], commands: [], durations: {} }));
      assert.equal(treeError.code, 'TREE_TOO_LARGE');
      assert.match(treeError.message, /holds more than 0\.0 MiB of files \(limits\.maxTreeBytes\), reached at files\/blob\.bin/);
    });

    it('refuses a force push against the last applied revision of the status document, keeping the revision for the status', async () => {
      const store = new StateStore(state);
      await store.init();
      const applied = await upstream.commit('applied');
      await upstream.push('release');
      const fetched: RunState = { previous: [], commands: [], durations: {} };
      await fetchRevision(context(store, {}), fetched);
      assert.equal(fetched.revision, applied);
      await recordRun(store, host, { at: new Date().toISOString(), result: 'applied', revision: applied, generation: 1, durationMs: 0, durations: {} }, { revision: applied, generation: 1 });

      await upstream.git(['commit', '-q', '--amend', '-m', 'amended']);
      await upstream.push('--force', 'release');
      const refusedState: RunState = { previous: [], commands: [], durations: {} };
      const staged = await readdir(join(state, 'staging'));
      const error = await rejection(fetchRevision(context(store, {}), refusedState));
      assert.equal(error.code, 'NOT_DESCENDANT');
      assert.equal(refusedState.revision, await upstream.git(['rev-parse', 'HEAD']));
      assert.equal(refusedState.tree, undefined, 'the refused tree was never read nor exported');
      assert.deepEqual(await readdir(join(state, 'staging')), staged, 'and no staging dir of it is left');

      const allowed: RunState = { previous: [], commands: [], durations: {} };
      await fetchRevision(context(store, { allowRewinds: true }), allowed);
      assert.equal(allowed.revision, refusedState.revision);
    });

    it('refuses an unsigned commit when the source requires signatures', async () => {
      const store = new StateStore(state);
      await store.init();
      await upstream.commit('unsigned');
      await upstream.push('release');
      const error = await rejection(fetchRevision(context(store, { requireSignatures: true, allowedSignersFile: allowedSigners }), { previous: [], commands: [], durations: {} }));
      assert.equal(error.code, 'UNSIGNED');
    });
  });
});
