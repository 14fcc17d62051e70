/**
 * `check` of a repo with many hosts (bench/generate-fleet.ts): hosts are checked over worker threads, the verdicts
 * come back in host order, and a broken template fails exactly the hosts that use it, named with its problem, the
 * same with one thread or two.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appName } from '../../bench/generate.js';
import { fleetHostApps, fleetHostName, generateFleetRepo, ROUTER_HOST, writeFleetSecrets } from '../../bench/generate-fleet.js';
import { PARALLEL_FROM } from '../../reconciler/cli/check-hosts.js';
import { runCli } from '../helpers/cli.js';

interface CheckJson {
  ok: boolean;
  hosts: { host: string; files: number; problems: { code: string; file?: string }[] }[];
}

describe('check of many hosts', function () {
  this.timeout(300_000);
  const HOSTS = PARALLEL_FROM + 4;
  let base: string;
  let repo: string;
  let secrets: string;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'edge-check-fleet-'));
    repo = join(base, 'repo');
    secrets = join(base, 'secrets');
    await generateFleetRepo(repo, HOSTS);
    await writeFleetSecrets(secrets);
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const check = async (jobs: number) => {
    const result = await runCli(['check', '--repo', repo, '--secrets-dir', secrets, '--jobs', String(jobs), '--json']);
    return { exitCode: result.exitCode, json: JSON.parse(result.stdout) as CheckJson };
  };
  const names = [...Array.from({ length: HOSTS }, (_, k) => fleetHostName(k + 1)), ROUTER_HOST].sort();

  it('passes every host, over two threads, in host order', async () => {
    const { exitCode, json } = await check(2);
    assert.equal(exitCode, 0, JSON.stringify(json.hosts.filter((host) => host.problems.length > 0)));
    assert.deepEqual(json.hosts.map((host) => host.host), names);
    assert.ok(json.hosts.every((host) => host.files > 0));
  });

  it('fails exactly the hosts whose app template breaks Caddy, the same with one thread or two', async () => {
    const broken = fleetHostApps(1)[0] as number;
    const template = join(repo, 'roles', appName(broken), 'templates', 'site.caddy.hbs');
    await writeFile(template, (await readFile(template, 'utf8')).replace('encode zstd gzip', 'encode zstd gzip\n\tbogus_directive_x 1'));
    execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-a', '-m', 'break it']);
    const users = names.filter((name) => name !== ROUTER_HOST && fleetHostApps(Number(name.slice('edge-'.length))).includes(broken));
    assert.ok(users.length > 0 && users.length < HOSTS);
    const verdicts = [];
    for (const jobs of [1, 2]) {
      const { exitCode, json } = await check(jobs);
      assert.equal(exitCode, 1);
      const failed = json.hosts.filter((host) => host.problems.length > 0);
      assert.deepEqual(failed.map((host) => host.host), users);
      for (const host of failed) assert.ok(host.problems.some((problem) => problem.code.startsWith('CADDY')), JSON.stringify(host.problems));
      verdicts.push(json.hosts);
    }
    assert.deepEqual(verdicts[0], verdicts[1]);
  });
});
