/**
 * The file renderer: target, mode and owner, the validate command and onChange normalization, no secrets, and the
 * real validate commands (logrotate, systemd-tmpfiles) run on staged copies.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ResourceDecl } from '../../../reconciler/model.js';
import { fileRenderer } from '../../../renderers/file/index.js';
import { summarizeOutput } from '../../../renderers/file/validate.js';
import { RenderProblems, type RenderedFile } from '../../../renderers/types.js';
import { testData, testEngine, testHost } from '../../helpers/render-fixtures.js';

const HOST = testHost('app-1', 'app');

const DATA = testData(HOST, { keep: 14 });

function render(spec: Record<string, unknown>, templates: Record<string, string> = {}): RenderedFile[] {
  const engine = testEngine('app', templates, { get: () => 'a-secret-value', description: 'the test secrets' });
  const resource: ResourceDecl = {
    kind: 'file',
    name: 'lod-logrotate',
    role: 'app',
    spec,
    source: { file: 'roles/app/role.yaml', line: 7, path: '/resources/2' },
  };
  return fileRenderer.render({ resource, host: HOST, data: DATA, engine });
}

describe('file renderer', () => {
  it('renders to its target with mode 0644 root:root by default and no activation', () => {
    const [file] = render({ target: '/etc/sysctl.d/90-edge.conf', content: 'vm.swappiness = 10' });
    assert.ok(file);
    assert.equal(file.path, '/etc/sysctl.d/90-edge.conf');
    assert.equal(file.mode, 0o644);
    assert.equal(`${file.owner}:${file.group}`, 'root:root');
    assert.equal(file.content, 'vm.swappiness = 10\n');
    assert.equal(file.sensitive, false);
    assert.equal(file.validateCommand, undefined);
    assert.equal(file.onChange, undefined);
  });

  it('keeps mode, owner and group, splits a string validate command on whitespace', () => {
    const [file] = render({
      target: '/etc/logrotate.d/lod',
      template: 'lod.hbs',
      mode: '0640',
      owner: 'root',
      group: 'adm',
      validate: '  logrotate   --debug %s ',
    }, { 'lod.hbs': '/var/log/lod/*.log {\n  rotate {{vars.keep}}\n}\n' });
    assert.equal(file?.mode, 0o640);
    assert.equal(file?.group, 'adm');
    assert.equal(file?.template, 'roles/app/templates/lod.hbs');
    assert.deepEqual(file?.validateCommand, ['logrotate', '--debug', '%s']);
    assert.equal(file?.content, '/var/log/lod/*.log {\n  rotate 14\n}\n');
  });

  it('normalizes onChange: restart and reload sorted and de-duplicated, run kept as written', () => {
    const [file] = render({
      target: '/etc/tmpfiles.d/edge-dirs.conf',
      content: 'd /srv/apps 0755 root root -',
      onChange: { restart: ['lod.service', 'caddy.service', 'lod.service'], run: ['systemd-tmpfiles', '--create', '/etc/tmpfiles.d/edge-dirs.conf'] },
    });
    assert.deepEqual(file?.onChange, {
      restart: ['caddy.service', 'lod.service'],
      reload: [],
      run: ['systemd-tmpfiles', '--create', '/etc/tmpfiles.d/edge-dirs.conf'],
    });
  });

  it('refuses secrets with SECRET_NOT_ALLOWED', () => {
    assert.throws(
      () => render({ target: '/etc/sysctl.d/x.conf', content: 'k = {{secret "K"}}' }),
      (error: unknown) => error instanceof RenderProblems && error.problems[0]?.code === 'SECRET_NOT_ALLOWED',
    );
  });
});

describe('file validation (real commands on staged copies)', () => {
  let stagingDir: string;

  before(async () => {
    stagingDir = await mkdtemp(join(tmpdir(), 'edge-file-test-'));
  });

  after(async () => {
    await rm(stagingDir, { recursive: true, force: true });
  });

  async function validate(files: RenderedFile[]) {
    for (const file of files) {
      await mkdir(dirname(join(stagingDir, file.path)), { recursive: true });
      await writeFile(join(stagingDir, file.path), file.content, { mode: 0o600 });
    }
    return fileRenderer.validate({
      files,
      allFiles: files,
      stagingDir,
      guards: { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' },
      externalExecPrefixes: [],
    });
  }

  it('passes a logrotate snippet that `logrotate --debug` accepts', async () => {
    const files = render({
      target: '/etc/logrotate.d/lod',
      content: '/var/log/lod/*.log {\n  daily\n  rotate 14\n  missingok\n}\n',
      validate: ['logrotate', '--debug', '--state', 'logrotate.status', '%s'],
    });
    assert.deepEqual(await validate(files), []);
  });

  it('reports FILE_VALIDATE with the exit code and the tool error, showing host paths only', async () => {
    const files = render({
      target: '/etc/logrotate.d/lod',
      template: 'lod.hbs',
      validate: ['logrotate', '--debug', '--state', 'logrotate.status', '%s'],
    }, { 'lod.hbs': '/var/log/lod/*.log {\n  rotate many\n}\n' });
    const problems = await validate(files);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.code, 'FILE_VALIDATE');
    assert.equal(problems[0]?.file, 'roles/app/templates/lod.hbs');
    assert.match(problems[0]?.message ?? '', /^validate command "logrotate --debug --state logrotate.status %s" failed for \/etc\/logrotate\.d\/lod \(exit 1\): error: \/etc\/logrotate\.d\/lod:2 bad rotation count 'many'/);
    assert.ok(!(problems[0]?.message ?? '').includes(stagingDir));
  });

  it('checks a tmpfiles.d file with systemd-tmpfiles in a root inside its scratch dir, leaving nothing in the staging dir', async () => {
    const good = render({
      target: '/etc/tmpfiles.d/edge-dirs.conf',
      content: 'd /srv/apps 0755 root root -\n',
      validate: ['systemd-tmpfiles', '--root=tmpfiles-root', '--create', '%s'],
    });
    assert.deepEqual(await validate(good), []);
    assert.ok(!(await readdir(stagingDir)).includes('tmpfiles-root'));
    const bad = render({
      target: '/etc/tmpfiles.d/edge-dirs.conf',
      content: 'd srv/apps 0755 root root -\n',
      validate: ['systemd-tmpfiles', '--root=tmpfiles-root', '--create', '%s'],
    });
    const problems = await validate(bad);
    assert.equal(problems[0]?.code, 'FILE_VALIDATE');
    assert.match(problems[0]?.message ?? '', /\(exit 65\): \/etc\/tmpfiles\.d\/edge-dirs\.conf:1: Path 'srv\/apps' not absolute\.$/);
  });

  it('reports FILE_VALIDATE_COMMAND when the command is not installed', async () => {
    const files = render({ target: '/etc/sysctl.d/x.conf', content: 'a = 1', validate: ['edge-no-such-tool', '%s'] });
    const problems = await validate(files);
    assert.equal(problems[0]?.code, 'FILE_VALIDATE_COMMAND');
    assert.deepEqual([problems[0]?.file, problems[0]?.line, problems[0]?.path], ['roles/app/role.yaml', 7, '/resources/2']);
  });

  it('runs without a shell, in its scratch dir, which is also its HOME', async () => {
    const files = render({
      target: '/etc/sysctl.d/x.conf',
      content: 'a = 1',
      validate: ['sh', '-c', '[ "$HOME" = "$PWD" ] && [ -f "$1" ] || exit 3', 'sh', '%s'],
    });
    assert.deepEqual(await validate(files), []);
    const quoted = render({ target: '/etc/sysctl.d/y.conf', content: 'a = 1', validate: ['test', '-f', '%s;', '%s'] });
    const problems = await validate(quoted);
    assert.equal(problems[0]?.code, 'FILE_VALIDATE', 'the ; is an argument, not a shell separator');
  });
});

describe('summarizeOutput', () => {
  it('prefers error lines over banners and keeps at most three', () => {
    const stderr = 'warning: debug mode\n\nreading config\nerror: a\nerror: b\nerror: c\nerror: d\n';
    assert.equal(summarizeOutput(stderr, '', '/tmp/s'), 'error: a | error: b | error: c');
  });

  it('falls back to stdout and strips the staging dir', () => {
    assert.equal(summarizeOutput('', 'checked /tmp/s/etc/x\n', '/tmp/s'), 'checked /etc/x');
  });
});
