/**
 * Plain templates (renderers/template-plan.ts) render as handlebars's compiled templates do: the same text, the same
 * problems, the same secrets and the same tracked reads, for every template of the repo's examples and for the edge
 * cases that leave the plain path.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Handlebars from 'handlebars';
import { ReadLog, tracked } from '../../../reconciler/cache/tracked-values.js';
import type { ResourceDecl, ResourceKind } from '../../../reconciler/model.js';
import { planTemplate, scanPlainTemplate } from '../../../renderers/template-plan.js';
import { TemplateEngine, type SecretSource } from '../../../renderers/template.js';
import { RenderProblems } from '../../../renderers/types.js';
import { PROJECT_ROOT } from '../../helpers/paths.js';

const SECRETS: SecretSource = {
  get: (name) => (name === 'NOPE' ? undefined : name === 'BAD' ? 'two\nlines' : `value-of-${name}`),
  description: 'the test secrets',
};

/** Data shaped like a host's template data, with the awkward values the edge cases read. */
function data(): Record<string, unknown> {
  return {
    host: { name: 'edge-1', address: '100.64.0.11', standby: false, roles: ['base', 'app'], vars: {} },
    vars: {
      port: 8080,
      zero: 0,
      off: false,
      empty: '',
      nothing: null,
      list: ['a', 'b', 'c'],
      nested: { deep: { value: 'x' }, 'odd key': 'spaced', valueOf: 'own valueOf' },
      text: 'multi\nline',
      app_1: { port: 10001, workers: 2, release: 'r1' },
    },
    inventory: { hosts: [{ name: 'edge-1', address: '100.64.0.11' }], routes: [] },
  };
}

/** Edge cases: plain ones, and every way off the plain path. */
const CASES: string[] = [
  'plain text only\n',
  '{{vars.port}} {{vars.zero}} {{vars.off}} [{{vars.empty}}] [{{vars.nothing}}]',
  '{{host.name}}:{{host.address}} {{host.roles}} {{vars.list}} {{vars.list.1}} {{vars.list.length}}',
  '{{this.vars.port}} {{./vars.port}} {{{vars.port}}} {{vars.nested.deep.value}} {{vars.nested.[odd key]}}',
  'A={{secret "APP_TOKEN"}}\nB={{secret "OTHER"}}\n',
  'missing={{secret "NOPE"}}',
  'bad={{secret "BAD"}}',
  'name={{secret "not a name"}}',
  '{{json vars.nested}} {{json vars.list}} {{json 1}} {{json "s"}} {{json true}} {{json null}} {{json undefined}}',
  '{{join vars.list "-"}} {{join vars.list}} {{join vars.port}} {{eq vars.port 8080}} {{ne vars.port 8080}}',
  '{{lookupOr vars "port" 1}} {{lookupOr vars "none" "fallback"}} {{lookupOr vars "none"}}',
  '{{json this}} {{eq this.vars.port ./vars.port}}',
  '  {{~vars.port~}}  \n{{! a comment }}\n{{!-- a long comment --}}\nend {{vars.port}}\n',
  '{{vars.unknown}}',
  '{{vars.nested.deep.unknown}}',
  '{{vars.missing.value}}',
  '{{vars.nothing.value}}',
  '{{unknown}}',
  '{{vars.text}}',
  '{{vars.nested.valueOf}} {{vars.nested.toString}} {{vars.list.map}}',
  '{{toString}} {{constructor}}',
  '{{json vars.missing.value}}',
  '{{#if vars.port}}yes{{else}}no{{/if}} {{#each vars.list}}{{this}},{{/each}}',
  '{{lookup vars "port"}} {{log "hi" level="debug"}}',
  '{{json vars.port pretty=true}} {{json (eq vars.port 1)}} {{@root.vars.port}}',
  '{{nope "x"}} {{vars.port "x"}}',
  '{{> partial}}',
  '{{#each vars.list}}{{../vars.port}}{{/each}}',
  'unclosed {{vars.port',
  '{{#if vars.port}}x{{/unless}}',
];

/** The repo's own templates: the bundled desired-state and the examples. */
function repoTemplates(): { name: string; text: string }[] {
  const found: { name: string; text: string }[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.hbs')) found.push({ name: relative(PROJECT_ROOT, path), text: readFileSync(path, 'utf8') });
    }
  };
  walk(join(PROJECT_ROOT, 'desired-state'));
  walk(join(PROJECT_ROOT, 'examples'));
  return found;
}

/** Renders `text` as an env file (secrets allowed) with the given engine mode; the outcome and the reads. */
function outcome(text: string, plain: boolean, kind: ResourceKind = 'env-file') {
  const engine = new TemplateEngine(new Map([['roles/app/templates/t.hbs', text]]), SECRETS, { plain });
  const resource = { kind, name: 't', role: 'app', spec: { template: 't.hbs' }, source: { file: 'roles/app/role.yaml', line: 3 } } as unknown as ResourceDecl;
  const log = new ReadLog();
  let result: unknown;
  try {
    const rendered = engine.render(resource, tracked(data(), log, ['data']) as never, { allowSecrets: kind === 'env-file' });
    result = { text: rendered.text, secrets: rendered.secrets };
  } catch (error) {
    result = error instanceof RenderProblems ? { problems: error.problems } : { thrown: String(error) };
  }
  log.active = false;
  return { result, reads: log.list() };
}

describe('plain templates (template-plan.ts)', () => {
  it('render every edge case as the compiled template does: text, problems, secrets and reads', () => {
    for (const text of CASES) {
      assert.deepEqual(outcome(text, true), outcome(text, false), text);
      assert.deepEqual(outcome(text, true, 'file'), outcome(text, false, 'file'), `${text} (file)`);
    }
  });

  it('render every template of the repo as the compiled template does', () => {
    const templates = repoTemplates();
    assert.ok(templates.length >= 10, `found ${templates.length} templates`);
    for (const { name, text } of templates) assert.deepEqual(outcome(text, true), outcome(text, false), name);
  });

  it('take text, comments, paths and the pure helpers as steps, and leave the rest to handlebars', () => {
    const own = { json: (v: unknown) => JSON.stringify(v), secret: () => 'S' };
    const helpers = { all: { ...Handlebars.create().helpers, ...own }, callable: new Set(['json', 'secret']) };
    const plain = (text: string) => planTemplate(Handlebars.parse(text), helpers, String) !== undefined;
    assert.ok(plain('a {{x.y}} {{this.z}} {{! c }} {{json x 1 "s" true null undefined}} {{secret "A"}}'));
    for (const text of ['{{#if x}}y{{/if}}', '{{> p}}', '{{json x k=1}}', '{{json (json x)}}', '{{@root.x}}', '{{../x}}', '{{lookup x "y"}}', '{{log}}', '{{this}}', '{{x.y "arg"}}']) {
      assert.equal(plain(text), false, text);
    }
    // The steps print what the data holds.
    const steps = planTemplate(Handlebars.parse('{{a.b}}-{{json a}}-{{secret "A"}}'), helpers, String);
    assert.equal(steps?.({ a: { b: 2 } }), '2-{"b":2}-S');
  });

  it("scan plain templates into handlebars's own AST, and leave the rest to its parser", () => {
    const scanned = (text: string) => {
      const program = scanPlainTemplate(text);
      return program && JSON.parse(JSON.stringify(program.body)) as unknown;
    };
    const parsed = (text: string) => {
      const program = Handlebars.parse(text);
      return JSON.parse(JSON.stringify(program.body)) as unknown;
    };
    const plainTexts = [
      '', 'text only\n', '{{a}}', '{{ a.b-c.$d_e }}', 'x {{a}}{{b}} y\n{{c.d}}\n\n  {{e}}\n',
      '{{secret "NAME"}} {{json a 1 -2 3.5 true false null undefined \'s q\' "" b.c}}', '{{eq\ta\t"x" }}', 'a }} b } c {',
      'é {{a}} ✓\n{{b}}',
    ];
    for (const text of plainTexts) assert.deepEqual(scanned(text), parsed(text), text);
    const templates = repoTemplates();
    const scannable = templates.filter(({ text }) => scanPlainTemplate(text) !== undefined);
    assert.ok(scannable.length >= templates.length / 2, `scanned ${scannable.length} of ${templates.length} repo templates`);
    for (const { name, text } of scannable) assert.deepEqual(scanned(text), parsed(text), name);
    for (const text of CASES) {
      const body = scanned(text);
      if (body !== undefined) assert.deepEqual(body, parsed(text), text);
    }
    const handedOver = [
      '{{! c }}', '{{{a}}}', '{{a}}}', '{{~a}}', '{{a~}}', '\\{{a}}', '{{#if a}}b{{/if}}', '{{a b=c}}', '{{a (b c)}}', '{{@root.a}}',
      '{{../a}}', '{{this.a}}', '{{./a}}', '{{a.[b c]}}', '{{true}}', '{{else}}', '{{a "x\\"y"}}', '{{a 1b}}', '{{a 1.2.3}}', '{{a',
      '{{a}}\r\n', '{{a\nb}}', '{{> p}}', '{{&a}}', '{{a.0}}', '{{1}}', '{{é}}',
    ];
    for (const text of handedOver) assert.equal(scanPlainTemplate(text), undefined, text);
  });

  it('scan generated templates as handlebars parses them', () => {
    let seed = 11;
    const next = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const pieces = ['{{a}}', '{{a.b}}', '{{ x-y }}', '{{secret "N"}}', "{{json a 'q'}}", '{{eq a 1}}', '{{eq a -1.5 true}}', '{{a null}}', 'text', ' ', '\n', '}', '{', '}}', '{{', '\\', '"', '{{#if a}}', '{{/if}}', '{{!c}}', '{{~a}}', '{{a 1x}}'];
    let compared = 0;
    for (let count = 0; count < 2000; count++) {
      const text = Array.from({ length: 1 + Math.floor(next() * 8) }, () => pieces[Math.floor(next() * pieces.length)]).join('');
      const program = scanPlainTemplate(text);
      if (!program) continue;
      compared++;
      assert.deepEqual(JSON.parse(JSON.stringify(program.body)), JSON.parse(JSON.stringify(Handlebars.parse(text).body)), text);
    }
    assert.ok(compared > 200, `only ${compared} generated templates were plain`);
  });
});
