/**
 * The env-file renderer: secrets from the host, fixed mode and owner, syntax checks that never show a value, the
 * masked diff the planner prints, and the scan for literal secrets in templates.
 */
import assert from 'node:assert/strict';
import type { ResourceDecl } from '../../../reconciler/model.js';
import { envFileRenderer, findLiteralSecrets, maskEnvDiff } from '../../../renderers/env-file/index.js';
import type { SecretSource } from '../../../renderers/template.js';
import { RenderProblems, type RenderedFile } from '../../../renderers/types.js';
import { testData, testEngine, testHost } from '../../helpers/render-fixtures.js';

const HOST = testHost('app-1', 'app');

const DATA = testData(HOST, { port: 8080 });

const SECRET_VALUE = 'pa55-w0rd-never-printed';

function secrets(values: Record<string, string>): SecretSource {
  return { get: (name) => values[name], description: 'the test secrets dir' };
}

function render(spec: Record<string, unknown>, options: { templates?: Record<string, string>; secrets?: SecretSource } = {}): RenderedFile[] {
  const engine = testEngine('app', options.templates ?? {}, options.secrets ?? secrets({ DB_PASSWORD: SECRET_VALUE }));
  const resource: ResourceDecl = {
    kind: 'env-file',
    name: 'lod',
    role: 'app',
    spec,
    source: { file: 'roles/app/role.yaml', line: 4, path: '/resources/1' },
  };
  return envFileRenderer.render({ resource, host: HOST, data: DATA, engine });
}

async function validate(files: RenderedFile[]) {
  return envFileRenderer.validate({
    files,
    allFiles: files,
    stagingDir: '/nonexistent-staging',
    guards: { allowManagementCut: false, allowSshFromAnywhere: false, managementInterface: 'tailscale0' },
    externalExecPrefixes: [],
  });
}

describe('env-file renderer', () => {
  it('renders secrets into a 0600 root:root file marked sensitive, with the secret names', () => {
    const [file] = render(
      { template: 'lod.env.hbs' },
      { templates: { 'lod.env.hbs': 'PORT={{vars.port}}\nDB_PASSWORD={{secret "DB_PASSWORD"}}\n\n\n' } },
    );
    assert.ok(file);
    assert.equal(file.path, '/etc/edge-reconciler/env/lod.env');
    assert.equal(file.mode, 0o600);
    assert.equal(`${file.owner}:${file.group}`, 'root:root');
    assert.equal(file.sensitive, true);
    assert.deepEqual(file.secrets, ['DB_PASSWORD']);
    assert.equal(file.template, 'roles/app/templates/lod.env.hbs');
    assert.equal(file.content, `PORT=8080\nDB_PASSWORD=${SECRET_VALUE}\n`);
  });

  it('uses target when given and leaves template unset for inline content', () => {
    const [file] = render({ content: 'A=1', target: '/etc/edge-reconciler/env/other.env' });
    assert.equal(file?.path, '/etc/edge-reconciler/env/other.env');
    assert.equal(file?.template, undefined);
    assert.equal(file?.content, 'A=1\n');
  });

  it('fails with SECRET_MISSING naming the secret when the host lacks it', () => {
    assert.throws(
      () => render({ content: 'TOKEN={{secret "API_TOKEN"}}\n' }, { secrets: secrets({}) }),
      (error: unknown) =>
        error instanceof RenderProblems &&
        error.problems.length === 1 &&
        error.problems[0]?.code === 'SECRET_MISSING' &&
        error.problems[0].message.includes('"API_TOKEN"'),
    );
  });

  it('renders byte-identical output for the same input', () => {
    const spec = { content: 'PORT={{vars.port}}\nDB_PASSWORD={{secret "DB_PASSWORD"}}' };
    assert.equal(render(spec)[0]?.content, render(spec)[0]?.content);
  });
});

describe('env-file validation', () => {
  it('accepts KEY=VALUE lines, comments, blank lines and quoted values', async () => {
    const files = render({ content: '# c\n; c\n\nA=1\nB="two words"\nC=\'x\'\nD=\n' });
    assert.deepEqual(await validate(files), []);
  });

  it('never puts a secret value or a line text into a problem', async () => {
    const files = render({
      template: 'lod.env.hbs',
    }, {
      templates: {
        'lod.env.hbs': [
          '{{secret "DB_PASSWORD"}}',
          'SECRET="{{secret "DB_PASSWORD"}}',
          'bad key={{secret "DB_PASSWORD"}}',
          'DB_PASSWORD={{secret "DB_PASSWORD"}}\\',
          'DB_PASSWORD={{secret "DB_PASSWORD"}}',
          'DB_PASSWORD={{secret "DB_PASSWORD"}}',
        ].join('\n'),
      },
    });
    const problems = await validate(files);
    assert.deepEqual(
      problems.map((p) => p.code),
      ['ENV_SYNTAX', 'ENV_SYNTAX', 'ENV_SYNTAX', 'ENV_SYNTAX', 'ENV_DUPLICATE_KEY', 'ENV_DUPLICATE_KEY'],
    );
    for (const problem of problems) {
      const text = JSON.stringify(problem);
      assert.ok(!text.includes(SECRET_VALUE), `a problem shows the secret: ${text}`);
      assert.ok(!text.includes('pa55'), `a problem shows part of the secret: ${text}`);
      assert.match(problem.message, /^\/etc\/edge-reconciler\/env\/lod\.env line \d+: /);
      assert.equal(problem.file, 'roles/app/templates/lod.env.hbs');
    }
    assert.match(problems[1]?.message ?? '', /line 2: the value of SECRET opens a double quote/);
    assert.match(problems[4]?.message ?? '', /line 5: DB_PASSWORD is already set on line 4/);
  });

  it('points problems of inline content at the declaration', async () => {
    const [problem] = await validate(render({ content: 'not an assignment\n' }));
    assert.deepEqual(
      { code: problem?.code, file: problem?.file, line: problem?.line, path: problem?.path },
      { code: 'ENV_SYNTAX', file: 'roles/app/role.yaml', line: 4, path: '/resources/1' },
    );
  });
});

describe('maskEnvDiff', () => {
  it('lists added and changed keys in the new order, then removed keys, never a value', () => {
    const before = '# old\nA=1\nB=2\nC=3\nGONE=secret-old\n';
    const after = 'C=3\nNEW=secret-new\nA=changed\n\n# comment\nB=2\n';
    assert.deepEqual(maskEnvDiff(before, after), ['+NEW=<added>', '~A=<changed>', '-GONE=<removed>']);
  });

  it('shows every key as added for a new file, and nothing when only comments changed', () => {
    assert.deepEqual(maskEnvDiff(undefined, 'A=1\nB=2\n'), ['+A=<added>', '+B=<added>']);
    assert.deepEqual(maskEnvDiff('# one\nA=1\n', '# two\n\nA=1\n'), []);
  });

  it('compares the last value of a repeated key, as systemd does', () => {
    assert.deepEqual(maskEnvDiff('A=1\nA=2\n', 'A=2\n'), []);
  });
});

describe('findLiteralSecrets', () => {
  it('flags a secret-looking key with a literal value, naming key and line but not the value', () => {
    const problems = findLiteralSecrets('PORT=8080\nDB_PASSWORD=hunter2\nAPI_KEY="abc{{vars.x}}"\n', 'roles/app/templates/lod.env.hbs');
    assert.deepEqual(
      problems.map((p) => [p.code, p.line, p.message]),
      [
        ['SECRET_LITERAL', 2, 'DB_PASSWORD holds a literal value; use {{secret "DB_PASSWORD"}}'],
        ['SECRET_LITERAL', 3, 'API_KEY holds a literal value; use {{secret "API_KEY"}}'],
      ],
    );
    assert.ok(!JSON.stringify(problems).includes('hunter2'));
    assert.equal(problems[0]?.file, 'roles/app/templates/lod.env.hbs');
  });

  it('accepts values made only of template expressions, quotes or nothing', () => {
    const text = [
      'DB_PASSWORD={{secret "DB_PASSWORD"}}',
      'SESSION_SECRET="{{secret "SESSION_SECRET"}}"',
      'GITHUB_TOKEN={{vars.github_token}}',
      "STRIPE_API_KEY='{{{secret \"STRIPE\"}}}'",
      'SMTP_PASSWD=',
      '# PASSWORD=in-a-comment',
    ].join('\n');
    assert.deepEqual(findLiteralSecrets(text, 'f'), []);
  });

  it('treats AUTH as a whole word only, so AUTHOR and OAUTH_REDIRECT_URL are plain settings', () => {
    const text = 'AUTHOR=me\nOAUTH_REDIRECT_URL=https://x/cb\nBASIC_AUTH=user:pw\nPRIVATEKEY=x\nCREDENTIALS=y\n';
    assert.deepEqual(findLiteralSecrets(text, 'f').map((p) => p.line), [3, 4, 5]);
  });
});
