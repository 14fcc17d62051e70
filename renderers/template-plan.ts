/**
 * Plain templates without handlebars's compiler. Most templates are text with `{{path}}` and helper calls such as
 * `{{secret "NAME"}}`; compiling each to JavaScript (code generation and a `new Function` per template) was most of
 * a cold render. A template made only of text, comments and such mustaches becomes a list of steps run directly.
 *
 * The steps do what handlebars's compiled code does in strict mode, in the same order (the same property reads, `in`
 * checks and own-property checks: the render cache's tracking sees the same reads), but only on the plain path: a
 * property that is missing, inherited or a function, a value read from null, a block, a partial, a hash argument,
 * `@data`, `../` or a helper not listed here make the steps give up ({@link Unplain}) and the caller renders with
 * handlebars's compiled template, which then fails, warns or succeeds exactly as it always has.
 */
// `hbs.AST` is the global namespace of handlebars's type declarations.
import type {} from 'handlebars';
import { LineIndex } from '../reconciler/text-lines.js';

type Node = hbs.AST.Node;
type Expression = hbs.AST.Expression;
type PathExpression = hbs.AST.PathExpression;
type Mustache = hbs.AST.MustacheStatement;

/** A plain template's steps ran into something only the compiled template knows how to do. */
export class Unplain extends Error {}

type Context = Record<string, unknown>;
type Step = (context: Context) => string;
type Value = (context: Context) => unknown;

/** A plain template: renders `context`, printing each value through `print`; throws Unplain to hand over. */
export type PlainTemplate = (context: Context) => string;

const hasOwn = Object.prototype.hasOwnProperty;

/** Handlebars's `lookupProperty` on the plain path: an own, non-function property, or null/undefined. */
function lookup(parent: unknown, name: string): unknown {
  if (parent === null || parent === undefined) throw new Unplain();
  const result = (parent as Context)[name];
  if (result === null || result === undefined) return result;
  if (typeof result === 'function' || !hasOwn.call(parent, name)) throw new Unplain();
  return result;
}

/** Handlebars's `strict` lookup: the property must exist (`in`), then the plain lookup. */
function strictLookup(parent: unknown, name: string): unknown {
  if (!parent || !(name in (parent as object))) throw new Unplain();
  return lookup(parent, name);
}

/** A path that starts at the current context (`a.b`, `this.a`, `./a`): not `@data`, not `../`. */
function ownPath(path: Expression): path is PathExpression {
  if (path.type !== 'PathExpression') return false;
  const { data, depth } = path as PathExpression;
  return !data && depth === 0;
}

/** Whether `path` is a bare name that handlebars may take for a helper (`{{name}}`, not `{{this.name}}`). */
function simpleName(path: PathExpression): boolean {
  return path.parts.length === 1 && !/^\.|this\b/.test(path.original);
}

/** A helper argument: a literal, or a path read without strictness (as compiled code reads arguments). */
function argument(node: Expression): Value | undefined {
  switch (node.type) {
    case 'StringLiteral':
    case 'NumberLiteral':
    case 'BooleanLiteral': {
      const { value } = node as hbs.AST.StringLiteral | hbs.AST.NumberLiteral | hbs.AST.BooleanLiteral;
      return () => value;
    }
    case 'NullLiteral':
      return () => null;
    case 'UndefinedLiteral':
      return () => undefined;
    default: {
      if (!ownPath(node)) return undefined;
      const { parts } = node;
      return (context) => parts.reduce<unknown>((value, part) => lookup(value, part), context);
    }
  }
}

/** The engine's helpers: all of them by name, and those the steps may call (pure, and blind to their options). */
export interface PlanHelpers {
  all: Readonly<Record<string, unknown>>;
  callable: ReadonlySet<string>;
}

/** The value a mustache prints, or undefined when the mustache is not plain. */
function mustacheValue(node: Mustache, helpers: PlanHelpers): Value | undefined {
  const path = node.path;
  if (!ownPath(path) || (node.hash?.pairs.length ?? 0) > 0) return undefined;
  if (node.params.length > 0) {
    // A helper call: one of the callable helpers, by its bare name.
    const name = path.parts[0] as string;
    if (!simpleName(path) || !helpers.callable.has(name) || !hasOwn.call(helpers.all, name)) return undefined;
    const helper = helpers.all[name] as (...args: unknown[]) => unknown;
    const args = node.params.map(argument);
    if (args.some((arg) => arg === undefined)) return undefined;
    const values = args as Value[];
    const loc = node.loc;
    return (context) => helper.call(context, ...values.map((value) => value(context)), { name, hash: {}, data: { root: context }, loc });
  }
  const { parts } = path;
  if (parts.length === 0) return undefined;
  // `{{name}}` is a helper call when a helper has that name (even an inherited one): left to the compiler.
  if (simpleName(path) && (parts[0] as string) in helpers.all) return undefined;
  const last = parts[parts.length - 1] as string;
  const leading = parts.slice(0, -1);
  return (context) => strictLookup(leading.reduce<unknown>((value, part) => lookup(value, part), context), last);
}

/**
 * The steps of a parsed template (after handlebars's whitespace control), or undefined when it holds anything but
 * text, comments and plain mustaches. Every printed value goes through `print` (the engine's escapeExpression).
 */
export function planTemplate(program: hbs.AST.Program, helpers: PlanHelpers, print: (value: unknown) => string): PlainTemplate | undefined {
  if ((program.blockParams?.length ?? 0) > 0) return undefined;
  const steps: (string | Step)[] = [];
  for (const node of program.body as Node[]) {
    if (node.type === 'ContentStatement') steps.push((node as hbs.AST.ContentStatement).value);
    else if (node.type === 'CommentStatement') continue;
    else if (node.type === 'MustacheStatement') {
      const value = mustacheValue(node as Mustache, helpers);
      if (!value) return undefined;
      steps.push((context) => print(value(context)));
    } else return undefined;
  }
  return (context) => {
    let text = '';
    for (const step of steps) text += typeof step === 'string' ? step : step(context);
    return text;
  };
}

/** Names handlebars reads as literals or keywords: a path starting with one is left to its parser. */
const KEYWORDS: ReadonlySet<string> = new Set(['true', 'false', 'null', 'undefined', 'this', 'else', 'as']);
const PART = '[A-Za-z_$][A-Za-z0-9_$-]*';
const PATH = `${PART}(?:\\.${PART})*`;
/** A plain argument: a string without escapes, a number, a path (each then followed by a blank or `}}`). */
const ARGUMENT = `"[^"\\\\\\n]*"|'[^'\\\\\\n]*'|-?[0-9]+(?:\\.[0-9]+)?|${PATH}`;
/** `{{path args}}` with plain arguments, not followed by a third brace (`}}}` would close a `{{{`). */
const MUSTACHE = new RegExp(`\\{\\{[ \\t]*(${PATH})((?:[ \\t]+(?:${ARGUMENT}))*)[ \\t]*\\}\\}(?!\\})`, 'y');
/** One argument of a matched mustache, with the blanks before it. */
const NEXT_ARGUMENT = new RegExp(`[ \\t]+(${ARGUMENT})`, 'y');

/**
 * Parses a template made only of text and `{{path}}` or `{{helper "literal" path 1 true}}` mustaches into the AST
 * handlebars's parser gives it (the same nodes, values and locations: test/unit/renderers/template-plan.test.ts
 * compares them), without running that parser, which cost ~0.15 s for a fresh host's 3000 templates. Undefined for
 * anything else (comments and their whitespace control, blocks, `~`, `{{{`, escapes, hashes, sub-expressions,
 * keywords, carriage returns): handlebars parses those.
 */
export function scanPlainTemplate(source: string): hbs.AST.Program | undefined {
  if (source.includes('\r') || source.includes('\0')) return undefined;
  const lines = new LineIndex(source);
  const loc = (start: number, end: number): hbs.AST.SourceLocation => ({ start: lines.position(start), end: lines.position(end) }) as hbs.AST.SourceLocation;
  const body: hbs.AST.Statement[] = [];
  let offset = 0;
  while (offset < source.length) {
    const open = source.indexOf('{{', offset);
    const textEnd = open === -1 ? source.length : open;
    if (textEnd > offset) {
      const text = source.slice(offset, textEnd);
      if (open !== -1 && text.endsWith('\\')) return undefined;
      body.push({ type: 'ContentStatement', original: text, value: text, loc: loc(offset, textEnd) } as unknown as hbs.AST.ContentStatement);
    }
    if (open === -1) break;
    MUSTACHE.lastIndex = open;
    const match = MUSTACHE.exec(source);
    if (!match) return undefined;
    const [whole, pathText = '', argsText = ''] = match;
    const pathStart = source.indexOf(pathText, open + 2);
    const path = pathNode(pathText, pathStart, loc);
    if (!path) return undefined;
    const params: hbs.AST.Expression[] = [];
    const argsStart = pathStart + pathText.length;
    NEXT_ARGUMENT.lastIndex = 0;
    while (NEXT_ARGUMENT.lastIndex < argsText.length) {
      const arg = NEXT_ARGUMENT.exec(argsText);
      if (!arg?.[1]) return undefined;
      const start = argsStart + NEXT_ARGUMENT.lastIndex - arg[1].length;
      const param = literalNode(arg[1], loc(start, start + arg[1].length)) ?? pathNode(arg[1], start, loc);
      if (!param) return undefined;
      params.push(param);
    }
    const end = open + whole.length;
    body.push({ type: 'MustacheStatement', path, params, escaped: true, strip: { open: false, close: false }, loc: loc(open, end) } as unknown as hbs.AST.MustacheStatement);
    offset = end;
  }
  return { type: 'Program', body, strip: {}, loc: loc(0, source.length) } as unknown as hbs.AST.Program;
}

function pathNode(text: string, start: number, loc: (start: number, end: number) => hbs.AST.SourceLocation): PathExpression | undefined {
  const parts = text.split('.');
  if (KEYWORDS.has(parts[0] as string)) return undefined;
  return { type: 'PathExpression', data: false, depth: 0, parts, original: text, loc: loc(start, start + text.length) } as PathExpression;
}

function literalNode(text: string, location: hbs.AST.SourceLocation): Expression | undefined {
  if (text.startsWith('"') || text.startsWith("'")) {
    const value = text.slice(1, -1);
    return { type: 'StringLiteral', value, original: value, loc: location } as hbs.AST.StringLiteral;
  }
  if (/^-?[0-9]/.test(text)) return { type: 'NumberLiteral', value: Number(text), original: Number(text), loc: location } as hbs.AST.NumberLiteral;
  if (text === 'true' || text === 'false') return { type: 'BooleanLiteral', value: text === 'true', original: text === 'true', loc: location } as hbs.AST.BooleanLiteral;
  if (text === 'null') return { type: 'NullLiteral', value: null, original: null, loc: location } as unknown as hbs.AST.NullLiteral;
  if (text === 'undefined') return { type: 'UndefinedLiteral', value: undefined, original: undefined, loc: location } as unknown as hbs.AST.UndefinedLiteral;
  return undefined;
}
