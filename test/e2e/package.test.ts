/**
 * The production path on a VM without Node: the container boots with no Node at all, the .deb (built from this
 * checkout by packaging/build-deb.sh) is installed by bootstrap.sh, the operator sets the secrets it lists, a
 * second bootstrap run with --start changes nothing else and starts the hardened agent, which brings lod-prod live
 * and healthy (lod's release pulled from its repo and built: the example apps are Python), then takes one signed
 * webhook to the next commit.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { parseDocument } from 'yaml';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EXAMPLE_SECRETS } from '../helpers/cli.js';
import { PROJECT_IN_CONTAINER } from '../helpers/container.js';
import { AGENT, EdgeHost, SERVICE } from '../helpers/e2e-host.js';
import { head } from '../helpers/git-repo.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { APPS_HOST_CONFIG } from '../helpers/e2e-apps.js';

const BOOTSTRAP = `${PROJECT_IN_CONTAINER}/systemd/bootstrap.sh`;

describe('e2e package: the .deb and bootstrap.sh on a host without Node', function () {
  this.timeout(300_000);
  let edge: EdgeHost;
  let deb: string;
  let bootstrapArgs: string[];

  before(async function () {
    this.timeout(20 * 60_000); // builds the executable and the .deb, and on a fresh machine the cached root
    const version = (JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    process.stderr.write('      building the executable and the .deb (packaging/build-deb.sh)\n');
    await execa('bash', [join(PROJECT_ROOT, 'packaging', 'build-deb.sh')], { cwd: PROJECT_ROOT, stderr: 'inherit' });
    deb = `${PROJECT_IN_CONTAINER}/dist-bin/edge-reconciler_${version}_amd64.deb`;
    edge = await EdgeHost.boot({ node: false });
    bootstrapArgs = ['bash', BOOTSTRAP, '--deb', deb, '--repo', AGENT.repo, '--ref', AGENT.ref, '--host', 'lod-prod', '--webhook'];
  });
  after(async () => edge?.shutdown());

  it('has no Node: the agent is the executable alone', async () => {
    const node = await edge.box.exec(['sh', '-c', 'command -v node nodejs'], { reject: false });
    assert.notEqual(node.exitCode, 0, `node is on the PATH: ${node.stdout}`);
  });

  it('bootstrap installs the package and writes the config, lists the missing secrets, and starts nothing', async () => {
    const first = await edge.box.exec(bootstrapArgs, { reject: false, timeoutMs: 240_000 });
    assert.equal(first.exitCode, 0, `${first.stdout}\n${first.stderr}`);
    assert.match(first.stdout, /installing edge-reconciler \d+\.\d+\.\d+/);
    assert.match(first.stdout, /wrote \/etc\/edge-reconciler\/config\.yaml for host lod-prod/);
    assert.match(first.stdout, /LOD_DB_PASSWORD\s+missing/);
    assert.match(first.stdout, /LOD_SESSION_SECRET\s+missing/);
    assert.match(first.stdout, /systemctl enable --now edge-reconciler\.service/);
    assert.equal(await edge.box.unitState(SERVICE.unit), 'inactive', 'an unconfigured agent is not started');
    assert.equal((await edge.box.exec(['dpkg-query', '-W', '-f=${Status}', 'edge-reconciler'])).stdout, 'install ok installed');
    assert.equal((await edge.box.exec(['stat', '-c', '%a', '/etc/edge-reconciler/config.yaml'])).stdout.trim(), '600');
    assert.equal((await edge.box.exec(['stat', '-c', '%a', '/var/lib/edge-reconciler'])).stdout.trim(), '700');
    const journald = await edge.box.exec(['systemd-analyze', 'cat-config', 'systemd/journald.conf']);
    assert.match(journald.stdout, /^Storage=persistent/m);
  });

  it('sets the secrets from stdin, then a second bootstrap changes nothing else, passes doctor and starts the agent, which brings lod-prod live', async () => {
    for (const name of ['LOD_DB_PASSWORD', 'LOD_SESSION_SECRET']) {
      await edge.box.exec(['edge-reconciler', 'secrets', 'set', name], { input: `${EXAMPLE_SECRETS[name]}\n` });
    }
    // The operator maps the example's app repo URLs to the forge that holds them (the host config's apps section,
    // edited in place: its comments stay).
    const config = parseDocument(await readFile(edge.box.hostPath(SERVICE.config), 'utf8'));
    config.setIn(['apps', 'insteadOf'], APPS_HOST_CONFIG.insteadOf);
    await writeFile(edge.box.hostPath(SERVICE.config), config.toString());
    const second = await edge.box.exec([...bootstrapArgs, '--start'], { reject: false, timeoutMs: 240_000 });
    assert.equal(second.exitCode, 0, `${second.stdout}\n${second.stderr}`);
    assert.doesNotMatch(second.stdout, /installing|created|wrote|journald:/, `the second run changed something:\n${second.stdout}`);
    assert.match(second.stdout, /^ok\s+secrets: 2 present/m);
    assert.match(second.stdout, /edge-reconciler\.service enabled and started/);

    const revision = await head(edge.workRepo);
    const status = await edge.waitUntilLive(revision, 180_000).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await edge.evidence([SERVICE.unit, 'lod.service'])}\n${await edge.box.journal(SERVICE.unit, 60)}`);
    });
    assert.equal(status.host, 'lod-prod');
    assert.equal(await edge.box.unitState('lod.service'), 'active');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '4');
    const envFile = await edge.box.readFile('/etc/edge-reconciler/env/lod.env');
    assert.ok(envFile.includes(EXAMPLE_SECRETS.LOD_SESSION_SECRET as string), 'the secret set from stdin reached the env file');

    const pid = await edge.box.mainPid(SERVICE.unit);
    const exe = (await edge.box.exec(['readlink', `/proc/${pid}/exe`])).stdout.trim();
    assert.equal(exe, '/usr/bin/edge-reconciler', 'the agent runs as the single executable');
    // The repo's validate commands run in the namespace sandbox even inside the hardened unit.
    assert.match(await edge.box.journal(SERVICE.unit, 200), /repo-supplied commands run confined \(nobody(-userns)?\)/);
    const { exposure, report } = await edge.securityExposure(SERVICE.unit);
    assert.ok(exposure <= 4.0, `systemd-analyze security rates the agent's unit ${exposure} (at most 4.0):\n${report}`);
  });

  it('takes one signed webhook to the next commit, live and healthy', async () => {
    const secret = (await edge.box.readFile('/etc/edge-reconciler/webhook-secret')).trim();
    const next = await edge.commit('hosts/lod-prod.yaml', (text) => text.replace(/workers: \d+/, 'workers: 7'), 'lod: 7 workers');
    const answer = await edge.sendWebhook(next, secret, 'package-1');
    assert.equal(answer.status, 202, answer.body);
    const status = await edge.waitUntilLive(next, 180_000);
    assert.equal(status.lastAttempted?.result, 'applied');
    assert.equal(await edge.box.unitState('lod.service'), 'active');
    assert.equal((await edge.lodEnv()).LOD_WORKERS, '7');
    // The changed host file was checked by the executable's own schema code, generated when it was built: the
    // agent compiles no schema (and keeps no schema code in its cache dir).
    const origins = [...(await edge.box.journal(SERVICE.unit, 2000)).matchAll(/"schemaCode":"([a-z-]+)"/g)].map((match) => match[1]);
    assert.ok(origins.length > 0, 'no load stage said where its schema code came from');
    assert.deepEqual([...new Set(origins)], ['built-in']);
    assert.ok(!(await edge.box.exec(['ls', `${AGENT.stateDir}/cache`])).stdout.includes('schemas.json'));
  });
});
