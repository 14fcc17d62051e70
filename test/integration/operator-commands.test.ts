/**
 * The commands an operator meets first on a new VM: `init` with the branch or tag pattern to follow, `secrets list`
 * and `secrets set` (names only, values from stdin), and `doctor`, against a real git repo of the example.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { EXAMPLE_SECRETS, runCli } from '../helpers/cli.js';
import { exampleGitRepo } from '../helpers/git-repo.js';

describe('operator commands: init, secrets, doctor', function () {
  this.timeout(180_000);
  let repo: string;
  let dir: string;
  let config: string;
  let secretsDir: string;

  before(async () => {
    repo = await exampleGitRepo();
    dir = await mkdtemp(join(tmpdir(), 'edge-operator-'));
    config = join(dir, 'config.yaml');
    secretsDir = join(dir, 'secrets');
  });

  it('init writes the branch to follow, or a tag pattern with ref left out, and --check compares them', async () => {
    const tags = join(dir, 'tags.yaml');
    const byTag = await runCli(['init', '--config', tags, '--repo', repo, '--host', 'lod-prod', '--tag-pattern', 'prod-*', '--secrets-dir', secretsDir]);
    assert.equal(byTag.exitCode, 0, byTag.stderr);
    const written = parse(await readFile(tags, 'utf8')) as Record<string, unknown>;
    assert.equal(written.tagPattern, 'prod-*');
    assert.equal(written.ref, undefined, 'ref is commented out when tags are followed');
    assert.match(byTag.stdout, /following the newest tag matching prod-\*/);

    const both = await runCli(['init', '--config', join(dir, 'both.yaml'), '--repo', repo, '--ref', 'main', '--tag-pattern', 'prod-*']);
    assert.equal(both.exitCode, 2);
    assert.match(both.stderr, /--ref and --tag-pattern exclude each other/);

    const byBranch = await runCli(['init', '--config', config, '--repo', repo, '--host', 'lod-prod', '--ref', 'release', '--secrets-dir', secretsDir, '--state-dir', join(dir, 'state')]);
    assert.equal(byBranch.exitCode, 0, byBranch.stderr);
    assert.equal((parse(await readFile(config, 'utf8')) as Record<string, unknown>).ref, 'release');
    assert.equal((await runCli(['init', '--config', config, '--repo', repo, '--host', 'lod-prod', '--ref', 'release', '--check'])).exitCode, 0);
    const differs = await runCli(['init', '--config', config, '--repo', repo, '--host', 'lod-standby', '--ref', 'release', '--check']);
    assert.equal(differs.exitCode, 1);
    assert.match(differs.stderr, /host is lod-prod, not lod-standby/);
  });

  it('init says where a host name it was not given comes from', async () => {
    const result = await runCli(['init', '--config', join(dir, 'guessed.yaml'), '--repo', repo, '--secrets-dir', secretsDir]);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /comes from this machine's hostname: pass --host to name it/);
  });

  it('secrets list names what the host uses and what is missing, from the configured repo, and exits 1 until complete', async () => {
    const result = await runCli(['secrets', 'list', '--config', config]);
    assert.equal(result.exitCode, 1, result.stderr);
    assert.match(result.stdout, /host lod-prod uses 2 secret\(s\)/);
    assert.match(result.stdout, /LOD_DB_PASSWORD\s+missing\s+used by \/etc\/edge-reconciler\/env\/lod\.env/);
    assert.match(result.stdout, /LOD_SESSION_SECRET\s+missing/);
    assert.doesNotMatch(result.stdout, /MODEL_GATEWAY_API_KEY/, 'only what this host uses');
  });

  it('secrets set writes the value from stdin, 0600, and never prints it; list then reports it present', async () => {
    const value = EXAMPLE_SECRETS.LOD_DB_PASSWORD as string;
    const set = await runCli(['secrets', 'set', 'LOD_DB_PASSWORD', '--config', config], { input: `${value}\n` });
    assert.equal(set.exitCode, 0, set.stderr);
    const file = join(secretsDir, 'LOD_DB_PASSWORD');
    assert.equal(await readFile(file, 'utf8'), value, 'one trailing newline dropped');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(!`${set.stdout}${set.stderr}`.includes(value));

    const list = await runCli(['secrets', 'list', '--config', config, '--json']);
    const report = JSON.parse(list.stdout) as { secrets: { name: string; state: string }[] };
    assert.deepEqual(report.secrets.map((s) => [s.name, s.state]), [
      ['LOD_DB_PASSWORD', 'present'],
      ['LOD_SESSION_SECRET', 'missing'],
    ]);
    assert.ok(!list.stdout.includes(value));

    // A secret others may read is refused by name and mode, never shown.
    const loose = join(secretsDir, 'LOD_SESSION_SECRET');
    await writeFile(loose, 'loose-value', { mode: 0o644 });
    const refused = await runCli(['secrets', 'list', '--config', config]);
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, /LOD_SESSION_SECRET.*mode 0644/);
    assert.ok(!`${refused.stdout}${refused.stderr}`.includes('loose-value'));
    await unlink(loose);
  });

  it('secrets set refuses a bad name and an empty value, writing nothing', async () => {
    const bad = await runCli(['secrets', 'set', '../escape', '--secrets-dir', secretsDir], { input: 'x' });
    assert.equal(bad.exitCode, 1);
    assert.match(bad.stderr, /SECRET_NAME_INVALID/);
    const empty = await runCli(['secrets', 'set', 'EMPTY_ONE', '--secrets-dir', secretsDir], { input: '' });
    assert.equal(empty.exitCode, 1);
    await assert.rejects(stat(join(secretsDir, 'EMPTY_ONE')));
  });

  it('doctor fails on an incomplete secret, warns that ufw would be enabled, names a missing interface, and passes once fixed', async () => {
    const first = await runCli(['doctor', '--config', config, '--json']);
    assert.equal(first.exitCode, 1);
    const findings = (JSON.parse(first.stdout) as { findings: { verdict: string; what: string; detail: string }[] }).findings;
    const by = (what: string) => findings.find((finding) => finding.what === what);
    assert.equal(by('config')?.verdict, 'ok');
    assert.match(by('repo')?.detail ?? '', /renders 12 files for lod-prod/, 'eleven files and the lod release\'s current link');
    assert.equal(by('secrets')?.verdict, 'FAIL');
    assert.match(by('secrets')?.detail ?? '', /LOD_SESSION_SECRET missing/);
    // This machine has no tailscale0: the example's SSH-over-Tailscale rules would lock it out.
    assert.equal(by('firewall')?.verdict, 'FAIL');
    assert.match(by('firewall')?.detail ?? '', /interface\(s\) this host does not have: tailscale0/);
    assert.match(by('firewall')?.detail ?? '', /limit in on tailscale0 proto tcp to any port 22/);

    await runCli(['secrets', 'set', 'LOD_SESSION_SECRET', '--config', config], { input: EXAMPLE_SECRETS.LOD_SESSION_SECRET as string });
    const again = await runCli(['doctor', '--config', config]);
    assert.match(again.stdout, /^ok\s+secrets: 2 present/m);
    assert.ok(!again.stdout.includes(EXAMPLE_SECRETS.LOD_SESSION_SECRET as string));
  });

  it('doctor says when the listen address is taken by another program', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as { port: number }).port;
    try {
      const text = (await readFile(config, 'utf8')).replace(/^listen: .*$/m, `listen: 127.0.0.1:${port}`);
      const taken = join(dir, 'taken.yaml');
      await writeFile(taken, text, { mode: 0o600 });
      const result = await runCli(['doctor', '--config', taken]);
      assert.match(result.stdout, new RegExp(`FAIL\\s+listen: 127\\.0\\.0\\.1:${port} is in use by another program`));
    } finally {
      squatter.close();
    }
  });
});
