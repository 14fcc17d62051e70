/**
 * The git source as an attacker would try it, against a real git server on 127.0.0.1: values that would reach
 * git as options never run anything, a tag named like the watched branch never replaces it, and credentials in
 * the repo URL reach the server as a header but never git's argv, the mirror, or an error.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportRevision, type SourceOptions } from '../../reconciler/source/git.js';
import { createUpstream, startGitHttpServer, startSilentServer, type GitHttpServer, type Upstream } from '../helpers/git-server.js';
import { rejection } from '../helpers/assertions.js';

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** The command lines of every git process running now, from /proc (world-readable, as an attacker reads them). */
async function gitCommandLines(): Promise<string[]> {
  const lines: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (/(^|\/)git(-remote-https?)?\0/.test(cmdline) || cmdline.startsWith('git')) lines.push(cmdline.split('\0').join(' '));
  }
  return lines;
}

describe('git source hardening (a real git server on 127.0.0.1)', function () {
  this.timeout(60_000);
  let root: string;
  let state: string;
  let server: GitHttpServer;
  let upstream: Upstream;
  let marker: string;

  const options = (extra: Partial<SourceOptions> = {}): SourceOptions => ({
    repo: server.url('desired.git'),
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
    marker = join(state, 'pwned');
    await upstream.commit('first');
    await upstream.git(['tag', '-a', '-m', 'r', 'prod-1.0.0']);
    await upstream.push('release', '--tags');
  });
  afterEach(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  });

  it('never lets a repo, ref or tag pattern reach git as an option: nothing runs, the error is a config mistake', async () => {
    const command = `touch ${marker}`;
    const repos = [`--exec=${command}`, `--upload-pack=${command}`, `-u${command}`, `--config=core.sshCommand=${command}`, `ext::sh -c ${command.replace(/ /g, '% ')}`, `ssh://-oProxyCommand=${command.replace(/ /g, '%20')}/x`, `-oProxyCommand=${command}:x`];
    for (const repo of repos) {
      for (const source of [{ tagPattern: 'prod-*' }, { ref: 'release' }]) {
        const error = await rejection(exportRevision(options({ repo, ...source })));
        assert.equal(error.code, 'FETCH_FAILED', repo);
        assert.equal(error.retry, 'invalid', repo);
        assert.match(error.message, /^repo ".*" /, repo);
      }
    }
    for (const ref of [`--upload-pack=${command}`, '-b', '../../etc', 'rel..ease']) {
      const error = await rejection(exportRevision(options({ ref })));
      assert.equal(error.retry, 'invalid', ref);
      assert.match(error.message, /^ref ".*" /, ref);
    }
    for (const tagPattern of [`--upload-pack=${command}`, '-*']) {
      const error = await rejection(exportRevision(options({ tagPattern })));
      assert.equal(error.retry, 'invalid', tagPattern);
    }
    assert.equal(await exists(marker), false, 'no command ran');
  });

  it('follows the branch, never a tag of the same name (refs/heads/release, not refs/tags/release)', async () => {
    const branch = await upstream.git(['rev-parse', 'HEAD']);
    await upstream.git(['checkout', '-q', '-b', 'attacker']);
    const planted = await upstream.commit('planted as a tag named like the branch');
    await upstream.git(['tag', 'release']);
    await upstream.push('attacker', 'refs/tags/release');

    const exported = await exportRevision(options({ ref: 'release' }));
    assert.equal(exported.revision, branch);
    assert.equal(exported.ref, 'refs/heads/release');
    assert.equal(exported.tag, undefined);
    assert.equal(await execa('git', ['-C', join(state, 'repo.git'), 'cat-file', '-e', `${planted}^{commit}`], { reject: false }).then((r) => r.exitCode), 128, 'the tag was not even fetched');

    const checkout = await exportRevision(options({ repo: upstream.work, ref: 'release' }));
    assert.equal(checkout.ref, 'refs/heads/release', 'a checkout prefers the branch too');
    assert.equal(checkout.revision, branch);
  });

  describe('credentials in the URL', () => {
    const TOKEN = 'ghp_UrlTokenThatMustNeverLeak0987654321';
    let guarded: GitHttpServer;

    beforeEach(async () => {
      guarded = await startGitHttpServer(root, { token: TOKEN });
    });
    afterEach(() => guarded.close());

    it('sends them as a header, never in the URL git gets, the mirror or an error', async () => {
      const url = guarded.url('desired.git').replace('http://', `http://deploy:${TOKEN}@`);
      const exported = await exportRevision(options({ repo: url, ref: 'release' }));
      assert.equal(exported.revision, await upstream.git(['rev-parse', 'release']));
      assert.ok(guarded.requests.length > 0 && guarded.requests.every((request) => request.authorized), 'every request carried the credentials');
      const mirror = join(state, 'repo.git');
      for (const file of ['config', 'FETCH_HEAD']) {
        assert.ok(!(await readFile(join(mirror, file), 'utf8').catch(() => '')).includes(TOKEN), `the token is not in ${file}`);
      }

      const wrong = await rejection(exportRevision(options({ repo: url.replace(TOKEN, `${TOKEN}x`), ref: 'release' })));
      const everything = [wrong.message, wrong.stack, String(wrong.cause), (wrong.cause as Error | undefined)?.stack].join('\n');
      assert.ok(!everything.includes(TOKEN), everything);
      assert.match(wrong.message, /from http:\/\/127\.0\.0\.1:\d+\/desired\.git/);
    });

    it('keeps them out of the argv of every git process (/proc/PID/cmdline is world-readable)', async () => {
      const silent = await startSilentServer();
      try {
        const repo = `http://deploy:${TOKEN}@127.0.0.1:${silent.port}/desired.git`;
        const cancel = new AbortController();
        const fetching = rejection(exportRevision(options({ repo, ref: 'release', timeoutMs: 30_000, signal: cancel.signal })));
        // git waits on the silent server: look at its command lines meanwhile, then cancel it.
        const deadline = Date.now() + 20_000;
        let seen: string[] = [];
        while (Date.now() < deadline) {
          seen = (await gitCommandLines()).filter((line) => line.includes(`127.0.0.1:${silent.port}`));
          if (seen.length > 0 && silent.received.some((text) => text.includes('\r\n\r\n'))) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        cancel.abort();
        assert.ok(seen.length > 0, 'a git process talking to the server was seen');
        for (const line of seen) assert.ok(!line.includes(TOKEN), `the token is in argv: ${line}`);
        const basic = Buffer.from(`deploy:${TOKEN}`).toString('base64');
        const error = await fetching;
        assert.match(error.message, /was cancelled/);
        assert.ok(silent.received.some((text) => text.includes(`Authorization: Basic ${basic}`)), 'the credentials went as a header');
        assert.ok(!JSON.stringify([error.message, error.stack, String(error.cause)]).includes(TOKEN));
      } finally {
        await silent.close();
      }
    });
  });
});
