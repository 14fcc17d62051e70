/**
 * `follow` mode through `edge-reconciler serve` as a real process (sandbox root, activation recorded, builds in the
 * namespace sandbox): the agent applies the head of the followed branch at start; a push to the app repo plus one
 * signed webhook from it brings the new commit live (`current` switched, the unit restarted), and `/status` and
 * `/metrics` name the live release. The host config's apps.insteadOf maps the app's URL to the local repo.
 */
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { appRepo } from '../helpers/app-release-repo.js';
import { git } from '../helpers/git-repo.js';
import { CLI } from '../helpers/paths.js';
import { TINY_HOST, writeTinyRepo } from '../helpers/tiny-repo.js';
import { until } from '../helpers/wait.js';

const SECRET = 'whs-9d1e-app-follow-webhook-secret';
const UNIT = '[Unit]\nDescription=lod\n\n[Service]\nExecStart=/usr/bin/python3 /srv/apps/lod/current/server.py\n\n[Install]\nWantedBy=multi-user.target\n';

describe('serve: follow mode with app push webhooks', function () {
  this.timeout(180_000);
  const cleanup: string[] = [];
  let child: ResultPromise | undefined;

  after(async () => {
    child?.kill('SIGTERM');
    await child;
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('brings a pushed app commit live after one signed webhook from the app repo', async () => {
    const base = await mkdtemp(join(tmpdir(), 'edge-follow-'));
    cleanup.push(base);
    const app = await appRepo(base);
    await git(app.dir, 'config', 'user.email', 'test@example.com');
    await git(app.dir, 'config', 'user.name', 'test');
    const v1 = await app.release('v1');
    const repo = await writeTinyRepo({
      role: {
        resources: [
          { kind: 'systemd-unit', name: 'lod.service', content: UNIT },
          { kind: 'app', name: 'lod', repo: 'https://git.example.com/edge/lod.git', follow: 'main', user: 'nobody', units: ['lod.service'] },
        ],
      },
    }, base);
    await execa('git', ['-C', repo, 'init', '-q', '-b', 'release']);
    await git(repo, 'config', 'user.email', 'test@example.com');
    await git(repo, 'config', 'user.name', 'test');
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'lod follows main');
    const root = await mkdtemp(join(base, 'root-'));
    const stateDir = await mkdtemp(join(base, 'state-'));
    const secretsDir = await mkdtemp(join(base, 'secrets-'));
    const webhookFile = join(stateDir, 'webhook-secret');
    await writeFile(webhookFile, `${SECRET}\n`, { mode: 0o600 });
    const config = join(stateDir, 'config.yaml');
    await writeFile(config, stringify({
      repo,
      ref: 'release',
      host: TINY_HOST,
      root,
      stateDir,
      secretsDir,
      listen: '127.0.0.1:0',
      webhook: { enabled: true, secretFile: webhookFile },
      poll: { enabled: false },
      drift: { watch: false },
      apps: { insteadOf: { 'https://git.example.com/edge/lod.git': app.dir } },
    }), { mode: 0o600 });
    child = execa(process.execPath, [CLI, 'serve', '--config', config, '--dry-activate'], { reject: false, buffer: false });
    const logs: { url?: string; msg: string; commands?: string[] }[] = [];
    let pending = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as { url?: string; msg: string });
    });
    const url = await until('the agent to listen', async () => logs.find((line) => line.url)?.url);
    const live = () => readlink(join(root, 'srv/apps/lod/current')).catch(() => '');
    await until('v1 live', async () => ((await live()) === `releases/${v1}` ? true : undefined));
    // The link switches during apply: the push goes out once the run has ended (its log line), as a person would.
    await until('the run that started lod', async () => (logs.some((line) => line.commands?.some((command) => command.includes('lod.service'))) ? true : undefined));

    const v2 = await app.release('v2');
    const payload = JSON.stringify({ ref: 'refs/heads/main', after: v2, repository: { full_name: 'edge/lod', clone_url: 'https://git.example.com/edge/lod.git' } });
    const response = await fetch(`${url}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(payload).digest('hex')}` },
      body: payload,
    });
    assert.equal(response.status, 202, await response.text());
    await until('v2 live', async () => ((await live()) === `releases/${v2}` ? true : undefined));
    // The link switches during apply; the run's log line (with its recorded commands) comes when the run ends.
    await until('the run that restarted lod', async () => (logs.some((line) => line.commands?.includes('systemctl restart lod.service')) ? true : undefined));

    const status = (await (await fetch(`${url}/status`)).json()) as { apps?: { app: string; sha: string; ref?: string; previous?: string }[] };
    assert.deepEqual(status.apps?.map(({ app: name, sha, ref, previous }) => ({ name, sha, ref, previous })), [{ name: 'lod', sha: v2, ref: 'main', previous: v1 }]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, new RegExp(`edge_reconciler_app_release_info\\{app="lod",sha="${v2}"\\} 1`));
  });
});
