/**
 * What a real systemd host keeps when a commit is bad: a broken Caddyfile is refused before anything is touched
 * (caddy-router), and a service that fails its health check is rolled back, marked bad and not retried (lod-prod).
 */
import assert from 'node:assert/strict';
import { EdgeHost } from '../helpers/e2e-host.js';

/** Where a failed apply must have changed nothing. */
const LIVE = ['/etc/caddy', '/etc/edge-reconciler', '/etc/systemd/system', '/etc/ufw'];

describe('e2e apply: bad commits on a real systemd', function () {
  this.timeout(180_000);
  let edge: EdgeHost;

  beforeEach(async function () {
    this.timeout(15 * 60_000);
    edge = await EdgeHost.boot();
  });
  afterEach(async () => edge?.shutdown());

  it('refuses a commit with a broken Caddyfile: every live file stays byte-identical and caddy keeps serving', async () => {
    // The distribution's /etc/caddy/Caddyfile is not the agent's to overwrite until the repo adopts it.
    const refused = await edge.apply('caddy-router');
    assert.equal(refused.exitCode, 1);
    assert.equal(refused.json?.error?.code, 'FILE_UNMANAGED', refused.stderr);
    assert.match(await edge.box.readFile('/etc/caddy/Caddyfile'), /^:80 \{/m);
    await edge.commit('roles/router/role.yaml', (text) => text.replace('    template: Caddyfile.hbs\n', '    template: Caddyfile.hbs\n    adopt: true\n'));
    const applied = await edge.applyOk('caddy-router');
    assert.deepEqual(applied.health?.map(({ name, status }) => [name, status]), [
      ['journald', 'healthy'],
      ['caddy', 'healthy'],
      ['https-port', 'healthy'],
      ['node-exporter', 'healthy'],
      ['prometheus-unit', 'healthy'],
      ['prometheus-ready', 'healthy'],
    ]);
    assert.ok(applied.commands.some((argv) => argv.join(' ') === 'systemctl reload caddy.service'));
    const admin = await edge.box.httpGet('http://localhost:2019/config/');
    assert.equal(admin.status, 200);
    assert.match(admin.body, /lod\.example\.com/, 'caddy runs the rendered routes');

    const before = await edge.snapshot(LIVE);
    const caddyPid = await edge.box.mainPid('caddy.service');
    const config = admin.body;
    await edge.commit('roles/router/templates/routes.caddy.hbs', (text) => text.replace('encode zstd gzip', 'encode_all zstd'));
    const broken = await edge.apply('caddy-router');
    assert.equal(broken.exitCode, 1);
    assert.equal(broken.json?.result, 'invalid');
    assert.equal(broken.json?.error?.code, 'CADDY_INVALID');
    assert.equal(broken.json?.error?.stage, 'validate');
    assert.deepEqual(broken.json?.commands, [], 'nothing ran on the host');

    assert.deepEqual(await edge.snapshot(LIVE), before, 'every live file is byte-identical');
    assert.equal(await edge.box.unitState('caddy.service'), 'active');
    assert.equal(await edge.box.mainPid('caddy.service'), caddyPid);
    assert.deepEqual(await edge.box.httpGet('http://localhost:2019/config/'), { status: 200, body: config });
    const redirect = await edge.box.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', 'Host: lod.example.com', 'http://127.0.0.1/']);
    assert.equal(redirect.stdout, '308 https://lod.example.com/', 'caddy still answers on :80 with its redirect to https');
    const status = await edge.status();
    assert.equal(status.lastApplied?.generation, applied.generation);
    assert.equal(status.lastAttempted?.code, 'CADDY_INVALID');
  });

  it('rolls back a commit whose service fails its health check, marks it bad and does not retry it', async () => {
    await edge.applyOk();
    const good = await edge.snapshot(LIVE);
    // The bad commit moves the app to another port than the role's health check asks; the short deadline keeps it quick.
    const bad = await edge.commitAll(
      {
        'edge.yaml': (text) => text.replace(/health:\n {2}deadlineSeconds: 60\n {2}intervalSeconds: 2\n/, 'health: {deadlineSeconds: 10, intervalSeconds: 1}\n'),
        'hosts/lod-prod.yaml': (text) => text.replace('    workers: 4\n', '    workers: 5\n    port: 8081\n'),
      },
      'lod: 5 workers on 8081',
    );
    const started = Date.now();
    const failed = await edge.apply();
    const took = Date.now() - started;
    assert.equal(failed.exitCode, 1, failed.stderr);
    assert.equal(failed.json?.result, 'rolled-back');
    assert.equal(failed.json?.error?.code, 'HEALTH_FAILED');
    assert.match(failed.json?.error?.message ?? '', /health check lod-http failed/);
    assert.ok(took < 30_000, `the failing check was given up in ${took} ms, past the 10 s deadline`);
    const restarts = failed.json?.commands.filter((argv) => argv.join(' ') === 'systemctl restart lod.service') ?? [];
    assert.equal(restarts.length, 2, 'lod.service restarted into the bad commit, then back');

    assert.deepEqual(await edge.snapshot(LIVE), good, 'the live files are the good generation\'s again');
    assert.equal(await edge.box.unitState('lod.service'), 'active');
    const app = await edge.lodEnv();
    assert.deepEqual([app.LOD_PORT, app.LOD_WORKERS], ['8080', '4'], 'the old version runs again');
    const status = await edge.status();
    assert.equal(status.lastApplied?.generation, 1);
    assert.equal(status.lastAttempted?.result, 'rolled-back');
    assert.equal(status.lastAttempted?.failedCheck?.name, 'lod-http');
    assert.deepEqual(status.badRevisions.map((entry) => entry.revision), [bad]);

    const lodPid = await edge.box.mainPid('lod.service');
    const again = await edge.apply();
    assert.equal(again.exitCode, 3);
    assert.equal(again.json?.result, 'refused');
    assert.equal(again.json?.error?.code, 'REVISION_BAD');
    assert.deepEqual(again.json?.commands, []);
    assert.deepEqual(await edge.snapshot(LIVE), good);
    assert.equal(await edge.box.mainPid('lod.service'), lodPid, 'the refused run restarted nothing');
  });
});
