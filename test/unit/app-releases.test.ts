/** The pure parts of app releases: the systemd-run command line of a build, URL rewrites and credentials. */
import assert from 'node:assert/strict';
import { buildArgv, buildUnitName, runBuild, systemdRunArgv } from '../../reconciler/host/app-build.js';
import type { CommandRunner } from '../../reconciler/host/host.js';
import { sandboxArgv } from '../../reconciler/host/sandbox.js';
import { systemUserArgv } from '../../reconciler/host/app-users.js';
import { appAuthFor, rewriteAppUrl } from '../../reconciler/source/app-source.js';
import { buildSpecHash } from '../../reconciler/stages/prepare.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('app releases: building', () => {
  const build = { command: ['python3', '-m', 'compileall', '-q', '.'], timeoutSeconds: 120, env: { PYTHONDONTWRITEBYTECODE: '1' }, network: false };

  it('runs a build as a transient unit: waited for, piped, collected, as the app user, only the release writable, private /tmp, no network, killed at the timeout', () => {
    const dir = `/srv/apps/lod/releases/.edge-tmp.${SHA}.abc123`;
    assert.deepEqual(systemdRunArgv({ app: 'lod', sha: SHA, hostDir: dir, user: 'lod', build }), [
      'systemd-run',
      '--wait',
      '--pipe',
      '--collect',
      '--quiet',
      '--service-type=exec',
      '--unit=edge-build-lod-0123456789ab',
      '--property=User=lod',
      `--property=WorkingDirectory=${dir}`,
      '--property=ProtectSystem=strict',
      `--property=ReadWritePaths=${dir}`,
      '--property=PrivateTmp=yes',
      '--property=ProtectHome=yes',
      '--property=NoNewPrivileges=yes',
      '--property=PrivateDevices=yes',
      '--property=RuntimeMaxSec=120',
      '--property=PrivateNetwork=yes',
      '--setenv=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `--setenv=HOME=${dir}`,
      '--setenv=LC_ALL=C.UTF-8',
      '--setenv=PYTHONDONTWRITEBYTECODE=1',
      '--',
      'python3',
      '-m',
      'compileall',
      '-q',
      '.',
    ]);
  });

  it('keeps the network for a build that declares it, and runs ./build.sh from the release', () => {
    const argv = systemdRunArgv({ app: 'lod', sha: SHA, hostDir: '/srv/apps/lod/releases/x', user: 'lod', build: { ...build, command: ['./build.sh', 'all'], network: true } });
    assert.ok(!argv.includes('--property=PrivateNetwork=yes'));
    assert.deepEqual(argv.slice(argv.indexOf('--') + 1), ['/srv/apps/lod/releases/x/build.sh', 'all']);
    assert.deepEqual(buildArgv({ ...build, command: ['make'] }, '/x'), ['make']);
    assert.equal(buildUnitName('model-gateway', SHA), 'edge-build-model-gateway-0123456789ab');
  });

  it('confines a sandbox build to its release dir, bound writable (not a throwaway tmpfs), as the app user', () => {
    const argv = sandboxArgv('/r/srv/apps/lod/releases/x', 'nobody-userns', ['/usr/bin/make'], { persist: true, uid: 998, gid: 997 });
    const after = argv.slice(argv.indexOf('sandbox') + 1);
    assert.deepEqual(after, ['/r/srv/apps/lod/releases/x', '998', 'nobody-userns', '1', '997', '/usr/bin/make']);
    assert.ok(argv.includes('--net'), 'no network unless declared');
    const validator = sandboxArgv('/tmp/s', 'nobody', ['/usr/bin/true']);
    assert.deepEqual(validator.slice(validator.indexOf('sandbox') + 1), ['/tmp/s', '65534', 'nobody', '0', '65534', '/usr/bin/true']);
  });

  it('runs the systemd-run command line through the runner and takes the build\'s exit status and output from it', async () => {
    const seen: string[][] = [];
    const runner: CommandRunner = {
      dryRun: false,
      async run(argv) {
        seen.push([...argv]);
        return { exitCode: 3, stdout: 'compiling\n', stderr: 'SyntaxError: invalid syntax\n', timedOut: false };
      },
    };
    const request = { app: 'lod', sha: SHA, hostDir: '/srv/apps/lod/releases/x', realDir: '/srv/apps/lod/releases/x', user: 'lod', uid: 998, gid: 998, build };
    const result = await runBuild(request, runner, true);
    assert.deepEqual(seen, [systemdRunArgv(request)]);
    assert.equal(result.exitCode, 3);
    assert.equal(result.timedOut, false);
    assert.equal(result.via, 'systemd-run');
    assert.match(result.output, /SyntaxError: invalid syntax/);
  });

  it('creates a missing app user as a system user without a login shell', () => {
    assert.deepEqual(systemUserArgv('lod', '/srv/apps/lod'), ['useradd', '--system', '--user-group', '--home-dir', '/srv/apps/lod', '--no-create-home', '--shell', '/usr/sbin/nologin', 'lod']);
  });

  it('builds again when the command, env, network or shared dirs change, not otherwise', () => {
    const app = { name: 'lod', repo: 'r', user: 'lod', shared: ['data'], keep: 5, units: [], build };
    assert.equal(buildSpecHash(app), buildSpecHash({ ...app, keep: 3, units: ['lod.service'], rev: SHA }));
    assert.notEqual(buildSpecHash(app), buildSpecHash({ ...app, build: { ...build, env: {} } }));
    assert.notEqual(buildSpecHash(app), buildSpecHash({ ...app, shared: [] }));
  });
});

describe('app releases: reaching the repo', () => {
  it('rewrites the longest matching insteadOf prefix, as git does', () => {
    const insteadOf = { 'https://git.example.com/': '/srv/git/', 'https://git.example.com/edge/': 'file:///srv/mirror/edge/' };
    assert.equal(rewriteAppUrl('https://git.example.com/edge/lod.git', insteadOf), 'file:///srv/mirror/edge/lod.git');
    assert.equal(rewriteAppUrl('https://git.example.com/other/x.git', insteadOf), '/srv/git/other/x.git');
    assert.equal(rewriteAppUrl('git@github.com:acme/lod.git', insteadOf), 'git@github.com:acme/lod.git');
  });

  it('picks the credentials of the longest matching prefix, without the prefix itself', () => {
    const auth = [
      { prefix: 'https://git.example.com/', tokenFile: '/etc/edge-reconciler/token-all' },
      { prefix: 'https://git.example.com/edge/', tokenFile: '/etc/edge-reconciler/token-edge', tokenUser: 'deploy' },
    ];
    assert.deepEqual(appAuthFor('https://git.example.com/edge/lod.git', auth), { tokenFile: '/etc/edge-reconciler/token-edge', tokenUser: 'deploy' });
    assert.deepEqual(appAuthFor('https://git.example.com/ops/x.git', auth), { tokenFile: '/etc/edge-reconciler/token-all' });
    assert.equal(appAuthFor('ssh://git@other/x.git', auth), undefined);
  });
});
