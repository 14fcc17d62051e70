/**
 * The caddy renderer: targets, scope, strict templates, and the real `caddy validate` on staged files.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ResourceDecl } from '../../../reconciler/model.js';
import { caddyRenderer } from '../../../renderers/caddy/index.js';
import { rewriteAbsoluteImports } from '../../../renderers/caddy/imports.js';
import { validateCaddy } from '../../../renderers/caddy/validate.js';
import { RenderProblems, type RenderedFile } from '../../../renderers/types.js';
import { testData, testEngine, testHost } from '../../helpers/render-fixtures.js';

const HOST = testHost('edge-1', 'router', { address: '100.64.0.10' });

const DATA = testData(HOST, { port: 8080 }, [
  {
    domain: 'lod.example.org',
    healthPath: '/healthz',
    upstreams: [
      { host: 'app-a', address: '100.64.0.11', port: 8080, standby: false },
      { host: 'app-b', address: '100.64.0.12', port: 8080, standby: true },
    ],
  },
  { domain: 'static.example.org', upstreams: [{ host: 'app-a', address: '100.64.0.11', port: 8081, standby: false }] },
]);

const ROUTER_TEMPLATE = [
  '{{#each inventory.routes}}',
  '{{domain}} {',
  '\treverse_proxy{{#each upstreams}} {{address}}:{{port}}{{/each}} {',
  '\t\tlb_policy first',
  '\t\tfail_duration 10s',
  '{{#if healthPath}}\t\thealth_uri {{healthPath}}',
  '{{/if}}\t}',
  '}',
  '{{/each}}',
  '',
].join('\n');

function render(name: string, spec: Record<string, unknown>, templates: Record<string, string> = {}): RenderedFile[] {
  const engine = testEngine('router', templates);
  const resource: ResourceDecl = {
    kind: 'caddy',
    name,
    role: 'router',
    spec,
    source: { file: 'roles/router/role.yaml', line: 3, path: '/resources/0' },
  };
  return caddyRenderer.render({ resource, host: HOST, data: DATA, engine });
}

function renderProblems(fn: () => unknown): { code: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof RenderProblems) return error.problems;
    throw error;
  }
  assert.fail('expected RenderProblems');
}

describe('caddy renderer', () => {
  describe('render', () => {
    it('writes the name "Caddyfile" to /etc/caddy/Caddyfile, mode 0644 root:root', () => {
      const [file] = render('Caddyfile', { content: '{\n\tadmin off\n}\n\n\n' });
      assert.equal(file?.path, '/etc/caddy/Caddyfile');
      assert.equal(file?.mode, 0o644);
      assert.equal(`${file?.owner}:${file?.group}`, 'root:root');
      assert.equal(file?.content, '{\n\tadmin off\n}\n');
      assert.equal(file?.template, 'roles/router/role.yaml');
    });

    it('writes other names to /etc/caddy/sites/<name>.caddy and records the template', () => {
      const [file] = render('lod', { template: 'lod.caddy.hbs' }, { 'lod.caddy.hbs': 'lod.example.org {\n\trespond ok\n}' });
      assert.equal(file?.path, '/etc/caddy/sites/lod.caddy');
      assert.equal(file?.template, 'roles/router/templates/lod.caddy.hbs');
      assert.equal(file?.content, 'lod.example.org {\n\trespond ok\n}\n');
    });

    it('builds the router from the inventory; a route without healthPath renders no health_uri', () => {
      const [file] = render('Caddyfile', { template: 'Caddyfile.hbs' }, { 'Caddyfile.hbs': ROUTER_TEMPLATE });
      assert.equal(
        file?.content,
        [
          'lod.example.org {',
          '\treverse_proxy 100.64.0.11:8080 100.64.0.12:8080 {',
          '\t\tlb_policy first',
          '\t\tfail_duration 10s',
          '\t\thealth_uri /healthz',
          '\t}',
          '}',
          'static.example.org {',
          '\treverse_proxy 100.64.0.11:8081 {',
          '\t\tlb_policy first',
          '\t\tfail_duration 10s',
          '\t}',
          '}',
          '',
        ].join('\n'),
      );
    });

    it('refuses a secret in a caddy template', () => {
      const problems = renderProblems(() => render('x', { content: 'x.org {\n\trespond "{{secret "TOKEN"}}"\n}' }));
      assert.deepEqual(
        problems.map((p) => p.code),
        ['SECRET_NOT_ALLOWED'],
      );
    });

    it('refuses scope "main" on a target other than /etc/caddy/Caddyfile', () => {
      const problems = renderProblems(() => render('router', { content: '{\n}', scope: 'main' }));
      assert.equal(problems[0]?.code, 'CADDY_SCOPE_TARGET');
    });

    it('refuses scope "site" on /etc/caddy/Caddyfile', () => {
      const problems = renderProblems(() => render('Caddyfile', { content: 'x.org', scope: 'site' }));
      assert.equal(problems[0]?.code, 'CADDY_SCOPE_TARGET');
    });

    it('is deterministic', () => {
      const once = render('Caddyfile', { template: 'Caddyfile.hbs' }, { 'Caddyfile.hbs': ROUTER_TEMPLATE });
      const twice = render('Caddyfile', { template: 'Caddyfile.hbs' }, { 'Caddyfile.hbs': ROUTER_TEMPLATE });
      assert.deepEqual(once, twice);
    });
  });

  describe('rewriteAbsoluteImports', () => {
    it('rewrites plain, quoted and in-block absolute imports under /etc/caddy only', () => {
      const text = [
        'import /etc/caddy/sites/*.caddy',
        '\timport "/etc/caddy/snippets/a"',
        'x.org { import /etc/caddy/b }',
        'import /etc/caddyx/c',
        'import /usr/share/caddy/d',
        'import sites/e',
        '# not an import /etc/caddy/f',
      ].join('\n');
      assert.equal(
        rewriteAbsoluteImports(text, '/s'),
        [
          'import /s/etc/caddy/sites/*.caddy',
          '\timport "/s/etc/caddy/snippets/a"',
          'x.org { import /s/etc/caddy/b }',
          'import /etc/caddyx/c',
          'import /usr/share/caddy/d',
          'import sites/e',
          '# not an import /etc/caddy/f',
        ].join('\n'),
      );
    });
  });

  describe('verdictText', () => {
    const verdictText = caddyRenderer.verdictText ?? ((text: string) => text);

    it('drops the lines that are blank or only a comment, and nothing else', () => {
      const text = '# Managed on edge-001\n{\n\t# note\n\tadmin localhost:2019 # inline stays\n}\n\t\nimport sites/*.caddy\n';
      assert.equal(verdictText(text), '{\n\tadmin localhost:2019 # inline stays\n}\nimport sites/*.caddy');
      assert.equal(verdictText(text.replace('edge-001', 'edge-417')), verdictText(text));
    });

    it('keeps whole a file where a "#" line may not be a comment, a comment may reach the next line, or one names an import', () => {
      const cases = [
        ':80 {\n\trespond "ok\n# inside a quoted token\n"\n}\n',
        ':80 {\n\trespond `ok\n# inside a raw token\n`\n}\n',
        ':80 {\n\t# a comment \\\n\tcontinued\n}\n',
        ':80 {\n\trespond <<EOF\n# heredoc text\nEOF\n}\n',
        '# {$SITE_NOTE}\n:80\n',
        '# {import /etc/shadow\n:80\n',
      ];
      for (const text of cases) assert.equal(verdictText(text), text, text);
    });
  });

  describe('validate (real caddy)', function () {
    this.timeout(180_000);
    let stagingDir: string;

    beforeEach(async () => {
      stagingDir = await mkdtemp(join(tmpdir(), 'caddy-test-'));
    });
    afterEach(async () => {
      await rm(stagingDir, { recursive: true, force: true });
    });

    async function stage(files: RenderedFile[]): Promise<void> {
      for (const file of files) {
        await mkdir(dirname(join(stagingDir, file.path)), { recursive: true });
        await writeFile(join(stagingDir, file.path), file.content);
      }
    }

    async function validate(files: RenderedFile[], binary?: string) {
      await stage(files);
      return validateCaddy(
        {
          files,
          allFiles: files,
          stagingDir,
          guards: { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' },
          externalExecPrefixes: [],
        },
        binary,
      );
    }

    it('accepts the router built from the inventory', async () => {
      const files = render('Caddyfile', { template: 'Caddyfile.hbs' }, { 'Caddyfile.hbs': ROUTER_TEMPLATE });
      assert.deepEqual(await validate(files), []);
    });

    it('maps an unknown directive in an imported site file to its template and target line', async () => {
      const files = [
        ...render('Caddyfile', { content: 'import /etc/caddy/sites/*.caddy' }),
        ...render('bad', { template: 'bad.caddy.hbs' }, { 'bad.caddy.hbs': 'bad.example.org {\n\treverse_prxy 127.0.0.1:1\n}' }),
      ];
      assert.deepEqual(await validate(files), [
        {
          code: 'CADDY_INVALID',
          file: 'roles/router/templates/bad.caddy.hbs',
          message: '/etc/caddy/sites/bad.caddy line 2: unrecognized directive: reverse_prxy',
        },
      ]);
    });

    it('validates site files through a wrapper when the repo does not manage the main Caddyfile', async () => {
      const files = [
        ...render('a', { content: 'a.example.org {\n\trespond ok\n}' }),
        ...render('b', { content: 'b.example.org {\n\tnope\n}' }),
      ];
      assert.deepEqual(await validate(files), [
        { code: 'CADDY_INVALID', file: 'roles/router/role.yaml', message: '/etc/caddy/sites/b.caddy line 2: unrecognized directive: nope' },
      ]);
    });

    it('resolves relative imports from the importing file directory', async () => {
      const files = [
        ...render('Caddyfile', { content: 'import sites/*.caddy' }),
        ...render('a', { content: 'a.example.org {\n\trespond ok\n}' }),
      ];
      assert.deepEqual(await validate(files), []);
    });

    it('never lets an absolute import read the live /etc/caddy', async () => {
      const files = render('Caddyfile', { content: 'import /etc/caddy/Caddyfile-does-not-exist-here' });
      const problems = await validate(files);
      assert.equal(problems.length, 1);
      assert.equal(problems[0]?.code, 'CADDY_INVALID');
      assert.match(problems[0]?.message ?? '', /^\/etc\/caddy\/Caddyfile line 1: File to import not found: \/etc\/caddy\/Caddyfile-does-not-exist-here$/);
    });

    it('leaves nothing behind in the staging dir but the staged files', async () => {
      const files = render('Caddyfile', { content: ':8080 {\n\trespond ok\n}' });
      await validate(files);
      assert.deepEqual(await readdir(stagingDir), ['etc']);
    });

    it('reports a missing caddy binary as VALIDATOR_MISSING', async () => {
      const files = render('Caddyfile', { content: ':8080 {\n\trespond ok\n}' });
      const problems = await validate(files, '/nonexistent/caddy');
      assert.deepEqual(
        problems.map((p) => p.code),
        ['VALIDATOR_MISSING'],
      );
    });
  });
});
