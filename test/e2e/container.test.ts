/**
 * The e2e harness itself against a real systemd: boot, services, commands inside, files from the host, UFW in the
 * container's own network namespace, and a shutdown that leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { SystemdContainer } from '../helpers/container.js';
import { ContainerError } from '../helpers/container-error.js';
import { STATE_DIR, checkPrerequisites } from '../helpers/container-runs.js';
import { waitUntil } from '../helpers/wait.js';

/** Boot includes building the cached root on a fresh machine (about 2 minutes). */
const BOOT_TIMEOUT_MS = 15 * 60_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function hostIptables(): Promise<string> {
  const result = await execa('iptables', ['-S'], { reject: false });
  return result.failed ? `(no iptables on the host: ${result.exitCode})` : result.stdout;
}

async function assertGone(container: SystemdContainer): Promise<void> {
  assert.equal(isAlive(container.nspawnPid), false, 'systemd-nspawn still runs');
  // An init orphaned by a killed nspawn is reaped by the host's PID 1, a moment after it died.
  await waitUntil(async () => !isAlive(container.initPid), { timeoutMs: 5_000, what: "the container's init to go" });
  assert.equal(existsSync(container.runDir), false, 'the copy of the root is still there');
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  assert.equal(mounts.includes(container.runDir), false, 'something is still mounted under the copy');
}

describe('e2e: systemd container', function () {
  this.timeout(180_000);
  let container: SystemdContainer;
  let hostRulesBefore: string;

  before(async function () {
    this.timeout(BOOT_TIMEOUT_MS);
    hostRulesBefore = await hostIptables();
    container = await SystemdContainer.boot();
  });

  after(async function () {
    await container?.shutdown();
  });

  it('boots systemd as PID 1 to a running system', async function () {
    assert.equal((await container.exec(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
    assert.equal((await container.exec(['systemctl', 'is-system-running'], { reject: false })).stdout.trim(), 'running');
    assert.equal((await container.exec(['hostname'])).stdout.trim(), 'edge-e2e');
  });

  it('runs caddy and ufw as active services', async function () {
    assert.equal(await container.isActive('caddy.service'), true);
    assert.equal(await container.isActive('ufw.service'), true);
    assert.ok((await container.mainPid('caddy.service')) > 1);
    assert.equal(await container.isActive('no-such.service'), false);
  });

  it('runs the host node and sees the project through the bind mounts', async function () {
    assert.equal((await container.exec(['node', '--version'])).stdout.trim(), process.version);
    const pkg = JSON.parse(await container.readFile('/opt/edge-reconciler/package.json')) as { name: string };
    assert.equal(pkg.name, 'edge-reconciler');
  });

  it('passes input and environment to commands and reports their exit code', async function () {
    const result = await container.exec(['sh', '-c', 'cat; echo "$GREETING" >&2; exit 3'], {
      input: 'from stdin',
      env: { GREETING: 'hello' },
      reject: false,
    });
    assert.deepEqual(result, { stdout: 'from stdin', stderr: 'hello\n', exitCode: 3 });
    await assert.rejects(container.exec(['false']), (error: Error) => error instanceof ContainerError);
  });

  it('starts a unit written into the root from the host and serves HTTP on its 127.0.0.1', async function () {
    const server = "require('http').createServer((q, s) => s.end('hello from ' + q.url)).listen(8080, '127.0.0.1')";
    const unit = ['[Unit]', 'Description=e2e http', '[Service]', `ExecStart=/usr/local/bin/node -e "${server}"`, ''];
    await writeFile(container.hostPath('/etc/systemd/system/e2e-http.service'), unit.join('\n'));
    await container.exec(['systemctl', 'daemon-reload']);
    await container.exec(['systemctl', 'start', 'e2e-http.service']);
    assert.equal(await container.isActive('e2e-http.service'), true);
    const response = await waitUntil(() => container.httpGet('http://127.0.0.1:8080/ping'), { what: 'e2e-http' });
    assert.deepEqual(response, { status: 200, body: 'hello from /ping' });
    assert.ok((await container.mainPid('e2e-http.service')) > 1);
    assert.match(await container.journal('e2e-http.service', 20), /Started e2e-http\.service/);
  });

  it('writes and reads files as the container sees them', async function () {
    await container.writeFile('/etc/edge-e2e/probe.env', 'A=1\n', 0o600);
    assert.equal(await container.readFile('/etc/edge-e2e/probe.env'), 'A=1\n');
    assert.equal((await container.exec(['stat', '-c', '%a', '/etc/edge-e2e/probe.env'])).stdout.trim(), '600');
    assert.equal(await readFile(container.hostPath('etc/edge-e2e/probe.env'), 'utf8'), 'A=1\n');
  });

  it("applies ufw rules to the container's own iptables and leaves the host's alone", async function () {
    await container.exec(['ufw', 'allow', 'in', 'on', 'tailscale0', 'to', 'any', 'port', '22', 'proto', 'tcp']);
    assert.match((await container.exec(['ufw', 'status'])).stdout, /^22\/tcp on tailscale0\s+ALLOW\s+Anywhere\s*$/m);
    const rules = (await container.exec(['iptables', '-S'])).stdout;
    assert.match(rules, /-A ufw-user-input -i tailscale0 -p tcp -m tcp --dport 22 -j ACCEPT/);
    assert.equal(await hostIptables(), hostRulesBefore);
  });

  it('shuts down leaving no process, mount or copy behind, and can be asked twice', async function () {
    await container.shutdown();
    await assertGone(container);
    await container.shutdown();
  });

  describe('a second boot', function () {
    const fixtures = join(STATE_DIR, `fixtures-${process.pid}`);
    let second: SystemdContainer;

    before(async function () {
      this.timeout(BOOT_TIMEOUT_MS);
      await mkdir(fixtures, { recursive: true });
      await writeFile(join(fixtures, 'seed.txt'), 'seed\n');
      second = await SystemdContainer.boot({ binds: [{ host: fixtures, container: '/srv/fixtures' }] });
    });

    after(async function () {
      await second?.shutdown();
      await rm(fixtures, { recursive: true, force: true });
    });

    it('starts from a pristine root', async function () {
      assert.notEqual(second.runDir, container.runDir);
      assert.equal(existsSync(second.hostPath('/etc/systemd/system/e2e-http.service')), false);
      assert.equal(existsSync(second.hostPath('/etc/edge-e2e/probe.env')), false);
      assert.doesNotMatch((await second.exec(['ufw', 'status'])).stdout, /tailscale0/);
    });

    it('shares a read-write fixtures folder with the host', async function () {
      assert.equal(await second.readFile('/srv/fixtures/seed.txt'), 'seed\n');
      await second.exec(['sh', '-c', 'echo back > /srv/fixtures/back.txt']);
      assert.equal(await readFile(join(fixtures, 'back.txt'), 'utf8'), 'back\n');
    });

    it('cleans up even when the container was killed', async function () {
      process.kill(second.initPid, 'SIGKILL');
      await waitUntil(async () => !isAlive(second.nspawnPid), { what: 'nspawn to exit' });
      await second.shutdown();
      await assertGone(second);
      assert.equal(await readFile(join(fixtures, 'seed.txt'), 'utf8'), 'seed\n', 'the bound host folder survived');
    });
  });

  describe('a container whose systemd-nspawn was killed', function () {
    let orphan: SystemdContainer;

    before(async function () {
      this.timeout(BOOT_TIMEOUT_MS);
      orphan = await SystemdContainer.boot({ ensureRoot: false });
    });

    after(async function () {
      await orphan?.shutdown();
    });

    it('is ended by shutdown, init included', async function () {
      process.kill(orphan.nspawnPid, 'SIGKILL');
      await waitUntil(async () => !isAlive(orphan.nspawnPid), { what: 'nspawn to exit' });
      await orphan.shutdown();
      await assertGone(orphan);
    });
  });

  describe('prerequisites', function () {
    it('refuses to bind a host folder that systemd-tmpfiles would empty', async function () {
      await assert.rejects(SystemdContainer.boot({ binds: [{ host: '/tmp/x' }], ensureRoot: false }), /cannot bind \/tmp\/x/);
    });

    it('names the missing tool', async function () {
      await assert.rejects(checkPrerequisites('/nonexistent'), /systemd-nspawn not found.*systemd-container/);
    });
  });
});
