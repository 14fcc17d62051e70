/**
 * The one template engine every renderer uses: handlebars in strict mode (an unknown variable is an error, never an
 * empty string), no HTML escaping, a few pure helpers, and `{{secret "NAME"}}` for the kinds that may hold secrets.
 * Every value a template prints (`{{x}}`, `{{{x}}}`, helpers, secrets) passes a check of its kind: in line-based
 * formats (env files, units, Caddyfiles, ufw) a value with a newline or another control character would add lines
 * (`LD_PRELOAD=` in an env file, `ExecStartPre=` in a unit), so it is refused; a generic file refuses NUL and the
 * control characters other than tab and newline.
 */
import Handlebars from 'handlebars';
import type { ResourceDecl, ResourceKind } from '../reconciler/model.js';
import type { Problem } from '../reconciler/errors.js';
import { planTemplate, scanPlainTemplate, Unplain } from './template-plan.js';
import { RenderProblems, type RenderedText, type TemplateData, type Templates } from './types.js';

/** Where secret values come from. In `check` without a secrets dir, placeholders stand in for them. */
export interface SecretSource {
  /** The value, or undefined when the secret does not exist. */
  get(name: string): string | undefined;
  /** Where the secrets live, for error messages (`/etc/edge-reconciler/secrets`). */
  readonly description: string;
}

/** A secret source that never fails: renders `<secret:NAME>`; for checking a repo without the host's secrets. */
export const placeholderSecrets: SecretSource = {
  get: (name) => `<secret:${name}>`,
  description: 'placeholders (no secrets dir given)',
};

/** The secret names a template may ask for. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

type Compiled = (data: TemplateData) => string;

/** What a printed value may hold, per kind: one line, or text (lines, tabs). */
export const VALUE_RULES: Record<ResourceKind, 'line' | 'text'> = {
  app: 'line',
  caddy: 'line',
  'env-file': 'line',
  file: 'text',
  'systemd-unit': 'line',
  ufw: 'line',
};

/**
 * The first character a value of this rule may not hold: for one line, C0 controls but tab, DEL, C1 controls (NEL)
 * and the Unicode line and paragraph separators; for text, C0 controls but tab and newline, and DEL.
 */
function firstBreaker(text: string, rule: 'line' | 'text'): number | undefined {
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (code === 9) continue;
    if (rule === 'text' && code === 10) continue;
    if (code < 32 || code === 127) return code;
    if (rule === 'line' && ((code >= 0x80 && code <= 0x9f) || code === 0x2028 || code === 0x2029)) return code;
  }
  return undefined;
}

/** The rule of the render in progress: renders are synchronous, so one slot serves every engine. */
let currentRule: { rule: 'line' | 'text'; kind: ResourceKind } | undefined;

/** Handlebars's own conversion of a printed value to text, without HTML escaping, then the kind's check. */
function checkedValue(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = '';
  else if (typeof value === 'object' && 'toHTML' in value && typeof value.toHTML === 'function') text = String(value.toHTML());
  else text = String(value as string);
  if (!currentRule) return text;
  const char = firstBreaker(text, currentRule.rule);
  if (char !== undefined) {
    const name = char === 10 ? 'a newline' : char === 13 ? 'a carriage return' : `the character U+${char.toString(16).toUpperCase().padStart(4, '0')}`;
    const rule = currentRule.rule === 'line' ? `values in ${currentRule.kind} files must be one line` : 'values may hold only text, tabs and newlines';
    throw new HelperError('TEMPLATE_VALUE_CONTROL', `a value printed by the template holds ${name}: ${rule} (the value is not shown)`);
  }
  return text;
}

// Every engine prints through the check: handlebars reads escapeExpression from its shared Utils when it builds a
// compiled template's container.
(Handlebars.Utils as { escapeExpression: (value: unknown) => string }).escapeExpression = checkedValue;

/** Marks every mustache, `{{{raw}}}` ones included, as escaped: so each printed value passes checkedValue. */
function escapeAll(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  if (record.type === 'MustacheStatement') record.escaped = true;
  for (const value of Object.values(record)) {
    if (Array.isArray(value)) value.forEach(escapeAll);
    else if (value && typeof value === 'object' && value !== record.loc) escapeAll(value);
  }
}

/** The helpers a plain template calls itself: pure, and blind to handlebars's options argument. */
const PLAIN_HELPERS: ReadonlySet<string> = new Set(['secret', 'eq', 'ne', 'json', 'join', 'lookupOr']);

/** Renders a resource's `template:` (a file under `roles/<role>/templates/`) or inline `content:`. */
export class TemplateEngine implements Templates {
  private readonly compiled = new Map<string, Compiled>();
  private readonly hb = Handlebars.create();
  private used = new Set<string>();
  private missing = new Set<string>();
  private allowSecrets = false;

  /**
   * `plain: false` compiles every template with handlebars (the tests compare both ways); by default, plain templates
   * run as steps (template-plan.ts).
   */
  constructor(
    private readonly templates: ReadonlyMap<string, string>,
    private readonly secrets: SecretSource,
    private readonly options: { plain?: boolean } = {},
  ) {
    this.registerHelpers();
  }

  /** Renders the resource's template with `data`; throws RenderProblems naming the file and line. */
  render(resource: ResourceDecl, data: TemplateData, options: { allowSecrets: boolean }): RenderedText {
    const { file, source } = this.locate(resource);
    this.used = new Set();
    this.missing = new Set();
    this.allowSecrets = options.allowSecrets;
    let text: string;
    try {
      const compiled = this.compile(file, source);
      currentRule = { rule: VALUE_RULES[resource.kind], kind: resource.kind };
      text = compiled(data);
    } catch (error) {
      if (error instanceof RenderProblems) throw error;
      throw new RenderProblems([templateProblem(file, error)]);
    } finally {
      currentRule = undefined;
    }
    if (this.missing.size > 0) {
      throw new RenderProblems(
        [...this.missing].sort().map((name) => ({
          code: 'SECRET_MISSING',
          file,
          message: `secret "${name}" is not in ${this.secrets.description}`,
        })),
      );
    }
    return { text, file, secrets: [...this.used].sort() };
  }

  private locate(resource: ResourceDecl): { file: string; source: string } {
    const { template, content } = resource.spec as { template?: string; content?: string };
    if (typeof content === 'string') return { file: resource.source.file, source: content };
    if (typeof template !== 'string') {
      throw new RenderProblems([
        {
          code: 'TEMPLATE_MISSING',
          ...resource.source,
          message: `${resource.kind} "${resource.name}" has neither template nor content`,
        },
      ]);
    }
    const file = `roles/${resource.role}/templates/${template}`;
    const source = this.templates.get(file);
    if (source === undefined) {
      throw new RenderProblems([
        { code: 'TEMPLATE_MISSING', ...resource.source, message: `template ${file} does not exist` },
      ]);
    }
    return { file, source };
  }

  private compile(file: string, source: string): Compiled {
    const key = `${file}\0${source}`;
    let fn = this.compiled.get(key);
    if (!fn) {
      let ast: hbs.AST.Program | undefined;
      const parsed = (): hbs.AST.Program => {
        if (!ast) {
          ast = this.hb.parse(source);
          escapeAll(ast);
        }
        return ast;
      };
      let template: HandlebarsTemplateDelegate | undefined;
      const compiled = (data: TemplateData) => {
        template ??= this.hb.compile(parsed(), { strict: true, noEscape: false, knownHelpersOnly: false });
        return template(data);
      };
      // The AST of a plain template comes from the scanner when it can read it, else from handlebars's parser (a
      // template it cannot parse throws here or at its first render: both inside render's try, the same problem).
      const helpers = { all: this.hb.helpers, callable: PLAIN_HELPERS };
      const plain = this.options.plain === false ? undefined : planTemplate(scanPlainTemplate(source) ?? parsed(), helpers, checkedValue);
      fn = plain
        ? (data) => {
            try {
              return plain(data as unknown as Record<string, unknown>);
            } catch (error) {
              // Off the plain path (a missing or inherited name, a function value): handlebars decides, as it always did.
              if (error instanceof Unplain) return compiled(data);
              throw error;
            }
          }
        : compiled;
      this.compiled.set(key, fn);
    }
    return fn;
  }

  private registerHelpers(): void {
    const hb = this.hb;
    hb.registerHelper('secret', (name: unknown) => {
      if (typeof name !== 'string' || !SECRET_NAME.test(name)) {
        throw new HelperError('SECRET_NAME', `secret takes one name like "DB_PASSWORD"`);
      }
      if (!this.allowSecrets) {
        throw new HelperError('SECRET_NOT_ALLOWED', `secret "${name}" may only be used in env-file templates`);
      }
      this.used.add(name);
      const value = this.secrets.get(name);
      if (value === undefined) {
        this.missing.add(name);
        return '';
      }
      return value;
    });
    hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    hb.registerHelper('ne', (a: unknown, b: unknown) => a !== b);
    hb.registerHelper('json', (value: unknown) => JSON.stringify(value));
    hb.registerHelper('join', (list: unknown, separator: unknown) =>
      Array.isArray(list) ? list.join(typeof separator === 'string' ? separator : ', ') : '',
    );
    hb.registerHelper('lookupOr', (object: unknown, key: unknown, fallback: unknown) => {
      if (object && typeof object === 'object' && typeof key === 'string' && key in object) {
        return (object as Record<string, unknown>)[key];
      }
      return fallback;
    });
  }
}

/** An error a helper raises on purpose, with its own code. */
class HelperError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Turns a handlebars exception into a problem with the template's line. */
function templateProblem(file: string, error: unknown): Problem {
  if (error instanceof HelperError) return { code: error.code, file, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  const strict = /^"([^"]+)" not defined in .* - (\d+):(\d+)$/s.exec(message);
  if (strict) {
    return {
      code: 'TEMPLATE_UNKNOWN_VARIABLE',
      file,
      line: Number(strict[2]),
      message: `unknown variable "${strict[1]}" (strict templates: declare it in vars or fix the name)`,
    };
  }
  const parse = /^Parse error on line (\d+):\n[\s\S]*?\n([^\n]*)$/.exec(message);
  if (parse) {
    return { code: 'TEMPLATE_SYNTAX', file, line: Number(parse[1]), message: `template syntax: ${parse[2]}` };
  }
  const mismatch = /^(\S+) doesn't match (\S+) - (\d+):(\d+)$/.exec(message);
  if (mismatch) {
    return {
      code: 'TEMPLATE_SYNTAX',
      file,
      line: Number(mismatch[3]),
      message: `template syntax: {{#${mismatch[1]}}} is closed by {{/${mismatch[2]}}}`,
    };
  }
  const lineHint = / - (\d+):(\d+)$/.exec(message);
  return {
    code: 'TEMPLATE_ERROR',
    file,
    ...(lineHint ? { line: Number(lineHint[1]) } : {}),
    message: message.split('\n')[0] ?? message,
  };
}
