/**
 * The systemd-unit renderer: activation intent per host, EnvironmentFile= parsing, and the real
 * `systemd-analyze verify` on staged units.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { HostSpec, ResourceDecl } from '../../../reconciler/model.js';
import { systemdUnitRenderer } from '../../../renderers/systemd-unit/index.js';
import { activatedUnit, environmentFiles } from '../../../renderers/systemd-unit/unit-file.js';
import { validateSystemdUnits } from '../../../renderers/systemd-unit/validate.js';
import { placeholderSecrets, TemplateEngine } from '../../../renderers/template.js';
import { RenderProblems, type RenderedFile, type TemplateData } from '../../../renderers/types.js';
import { testHost } from '../../helpers/render-fixtures.js';

function host(standby: boolean): HostSpec {
  return testHost('app-1', 'app', { address: '100.64.0.10', standby });
}

function data(standby: boolean): TemplateData {
  const view = { name: 'app-1', address: '100.64.0.10', standby, roles: ['app'], vars: { port: 8080 } };
  return { host: view, vars: view.vars, inventory: { hosts: [view], routes: [] } };
}

const SERVICE = '[Service]\nExecStart=/usr/bin/env true\n\n[Install]\nWantedBy=multi-user.target\n';

function render(name: string, spec: Record<string, unknown>, options: { standby?: boolean } = {}): RenderedFile[] {
  const engine = new TemplateEngine(new Map([['roles/app/templates/t.hbs', '{{vars.port}}']]), placeholderSecrets);
  const resource: ResourceDecl = {
    kind: 'systemd-unit',
    name,
    role: 'app',
    spec,
    source: { file: 'roles/app/role.yaml', line: 4, path: '/resources/0' },
  };
  const standby = options.standby ?? false;
  return systemdUnitRenderer.render({ resource, host: host(standby), data: data(standby), engine });
}

function intent(name: string, spec: Record<string, unknown>, options: { standby?: boolean } = {}) {
  const [file] = render(name, spec, options);
  assert.ok(file?.unit);
  return file.unit;
}

describe('systemd-unit renderer', () => {
  describe('render', () => {
    it('writes /etc/systemd/system/<name>, mode 0644 root:root, ending in one newline', () => {
      const [file] = render('lod.service', { content: `${SERVICE}\n\n` });
      assert.equal(file?.path, '/etc/systemd/system/lod.service');
      assert.equal(file?.mode, 0o644);
      assert.equal(`${file?.owner}:${file?.group}`, 'root:root');
      assert.equal(file?.content, SERVICE);
    });

    it('enables and starts an installable unit on an active host', () => {
      assert.deepEqual(intent('lod.service', { content: SERVICE }), {
        unit: 'lod.service',
        dropIn: false,
        enable: true,
        start: true,
        environmentFiles: [],
        restartOn: [],
      });
    });

    it('does not enable a unit without [Install] unless asked, and refuses enable: true there', () => {
      assert.equal(intent('job.service', { content: '[Service]\nExecStart=/bin/true\n' }).enable, false);
      assert.throws(
        () => render('job.service', { content: '[Service]\nExecStart=/bin/true\n', enable: true }),
        (error: unknown) => error instanceof RenderProblems && error.problems[0]?.code === 'UNIT_ENABLE_WITHOUT_INSTALL',
      );
    });

    it('installs but neither enables nor starts a unit on a standby host', () => {
      const unit = intent('lod.service', { content: SERVICE }, { standby: true });
      assert.equal(unit.enable, false);
      assert.equal(unit.start, false);
    });

    it('runs a unit with onStandby: run on a standby host like on an active one', () => {
      const unit = intent('exporter.service', { content: SERVICE, onStandby: 'run' }, { standby: true });
      assert.equal(unit.enable, true);
      assert.equal(unit.start, true);
    });

    it('gives a drop-in its parent unit and no opinion on enable/start', () => {
      assert.deepEqual(intent('caddy.service.d/10-env.conf', { content: '[Service]\nEnvironmentFile=/etc/e/caddy.env\n' }), {
        unit: 'caddy.service',
        dropIn: true,
        enable: false,
        start: false,
        environmentFiles: ['/etc/e/caddy.env'],
        restartOn: [],
      });
    });

    it('never enables or starts a template unit', () => {
      const unit = intent('worker@.service', { content: SERVICE, enable: true, start: true });
      assert.equal(unit.enable, false);
      assert.equal(unit.start, false);
    });

    it('sorts and deduplicates restartOn', () => {
      assert.deepEqual(intent('lod.service', { content: SERVICE, restartOn: ['/etc/b', '/etc/a', '/etc/b'] }).restartOn, [
        '/etc/a',
        '/etc/b',
      ]);
    });

    it('renders templates with strict variables', () => {
      const [file] = render('lod.service', { template: 't.hbs' });
      assert.equal(file?.content, '8080\n');
    });
  });

  describe('environmentFiles', () => {
    it('strips "-", skips specifiers and relative paths, honours the empty reset, sorts', () => {
      const text = [
        '[Service]',
        'EnvironmentFile=/etc/old.env',
        'EnvironmentFile=',
        'EnvironmentFile=-/etc/edge-reconciler/env/b.env',
        'EnvironmentFile=/etc/edge-reconciler/env/a.env',
        'EnvironmentFile=/etc/edge-reconciler/env/%i.env',
        'EnvironmentFile=relative.env',
        '# EnvironmentFile=/etc/commented.env',
        'EnvironmentFile=/etc/100%%.env',
      ].join('\n');
      assert.deepEqual(environmentFiles(text), [
        '/etc/100%.env',
        '/etc/edge-reconciler/env/a.env',
        '/etc/edge-reconciler/env/b.env',
      ]);
    });
  });

  describe('activatedUnit', () => {
    it('finds the service of a timer, a path unit and a socket', () => {
      assert.equal(activatedUnit('backup.timer', '[Timer]\nOnCalendar=daily\n'), 'backup.service');
      assert.equal(activatedUnit('backup.timer', '[Timer]\nUnit=other.service\n'), 'other.service');
      assert.equal(activatedUnit('watch.path', '[Path]\nPathChanged=/etc/x\n'), 'watch.service');
      assert.equal(activatedUnit('echo.socket', '[Socket]\nListenStream=7\nAccept=yes\n'), 'echo@.service');
      assert.equal(activatedUnit('lod.service', SERVICE), undefined);
    });
  });

  describe('validate (real systemd-analyze verify)', function () {
    this.timeout(180_000);
    let stagingDir: string;

    beforeEach(async () => {
      stagingDir = await mkdtemp(join(tmpdir(), 'unit-test-'));
    });
    afterEach(async () => {
      await rm(stagingDir, { recursive: true, force: true });
    });

    async function validate(files: RenderedFile[], options: { binary?: string; batch?: number; external?: string[] } = {}) {
      for (const file of files) {
        await mkdir(dirname(join(stagingDir, file.path)), { recursive: true });
        await writeFile(join(stagingDir, file.path), file.content);
      }
      return validateSystemdUnits(
        {
          files,
          allFiles: files,
          stagingDir,
          guards: { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' },
          externalExecPrefixes: options.external ?? ['/srv/apps', '/opt'],
        },
        { binary: options.binary, batch: options.batch },
      );
    }

    it('accepts a valid service that is wanted by the host multi-user.target', async () => {
      assert.deepEqual(await validate(render('lod.service', { content: SERVICE })), []);
    });

    it('fails on an unknown key although verify exits 0', async () => {
      const files = render('lod.service', { content: '[Service]\nExecStart=/bin/true\nBogus=1\n' });
      assert.deepEqual(await validate(files), [
        {
          code: 'UNIT_INVALID',
          file: 'roles/app/role.yaml',
          message: "/etc/systemd/system/lod.service line 3: unknown key 'Bogus' in section [Service], ignoring",
        },
      ]);
    });

    it('ignores a missing binary under an external exec prefix but not elsewhere', async () => {
      const files = render('api.service', {
        content: '[Service]\nExecStartPre=/usr/local/bin/nope\nExecStart=/srv/apps/api/bin/api\n',
      });
      assert.deepEqual(await validate(files), [
        {
          code: 'UNIT_EXEC_MISSING',
          file: 'roles/app/role.yaml',
          message: 'api.service: command /usr/local/bin/nope is not executable: No such file or directory',
        },
      ]);
      const strict = await validate(files, { external: [] });
      assert.deepEqual(
        strict.map((p) => p.code),
        ['UNIT_EXEC_MISSING', 'UNIT_EXEC_MISSING'],
      );
    });

    it('reports a timer whose service exists nowhere', async () => {
      const files = render('orphan.timer', { content: '[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n' });
      assert.deepEqual(await validate(files), [
        {
          code: 'UNIT_NOT_FOUND',
          file: 'roles/app/role.yaml',
          message: 'orphan.service (which orphan.timer activates) is neither in the repo nor on the host',
        },
      ]);
    });

    it('verifies the parent of a drop-in and reports it when it exists nowhere', async () => {
      const files = render('ghost.service.d/x.conf', { content: '[Service]\nLimitNOFILE=1024\n' });
      assert.deepEqual(await validate(files), [
        {
          code: 'UNIT_NOT_FOUND',
          file: 'roles/app/role.yaml',
          message:
            'ghost.service (the parent of drop-in /etc/systemd/system/ghost.service.d/x.conf) is neither in the repo nor on the host',
        },
      ]);
    });

    it('verifies many units in batches and reports a shared broken dependency once', async () => {
      // Five services, two per verify run: each run loads the broken base.service its units want.
      const users = ['a', 'b', 'c', 'd', 'e'].flatMap((name) =>
        render(`${name}.service`, { content: `[Unit]\nWants=base.service\n[Service]\nExecStart=/bin/true\n` }),
      );
      const files = [...users, ...render('base.service', { content: '[Service]\nExecStart=/bin/true\nBogus=1\n' })];
      const expected = [
        {
          code: 'UNIT_INVALID',
          file: 'roles/app/role.yaml',
          message: "/etc/systemd/system/base.service line 3: unknown key 'Bogus' in section [Service], ignoring",
        },
      ];
      assert.deepEqual(await validate(files, { batch: 2 }), expected);
      assert.deepEqual(await validate(files), expected);
      // A broken unit in a later run is reported too, after the shared one.
      const broken = files.map((file) => (file.path.endsWith('/d.service') ? { ...file, content: `${file.content}Nope=1\n` } : file));
      assert.deepEqual(
        (await validate(broken, { batch: 2 })).map((p) => p.message),
        [
          "/etc/systemd/system/base.service line 3: unknown key 'Bogus' in section [Service], ignoring",
          "/etc/systemd/system/d.service line 5: unknown key 'Nope' in section [Service], ignoring",
        ],
      );
    });

    it('reports a line about no managed unit instead of dropping it', async () => {
      // A fake systemd-analyze that prints what a broken host unit would look like.
      const fake = join(stagingDir, 'fake-analyze');
      await writeFile(fake, "#!/bin/sh\necho \"/lib/systemd/system/foo.service:3: Unknown key 'X' in section [Service], ignoring.\"\n", {
        mode: 0o755,
      });
      const problems = await validate(render('lod.service', { content: SERVICE }), { binary: fake });
      assert.deepEqual(problems, [
        {
          code: 'UNIT_VERIFY_UNRELATED',
          message:
            "systemd-analyze verify, about no managed unit: /lib/systemd/system/foo.service:3: Unknown key 'X' in section [Service], ignoring",
        },
      ]);
    });

    it('reports a missing systemd-analyze as VALIDATOR_MISSING', async () => {
      const problems = await validate(render('lod.service', { content: SERVICE }), { binary: '/nonexistent/systemd-analyze' });
      assert.deepEqual(
        problems.map((p) => p.code),
        ['VALIDATOR_MISSING'],
      );
    });
  });
});
