/**
 * YAML documents that remember where each value came from, so every problem can name its file and line, and the
 * schema check that reports all problems of a file at once with file, JSON pointer and line.
 */
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Problem } from '../errors.js';
import { readFast } from './yaml-fast-path.js';

/** A parsed YAML file: its plain value and a way back from a JSON pointer to a line. */
export interface YamlSource {
  file: string;
  value: unknown;
  /** The 1-based line of the node at `pointer` (or of its nearest existing parent). */
  lineOf(pointer: string): number | undefined;
  /** The line of every node, by JSON pointer: what a cache keeps instead of the document. */
  lines?(): Record<string, number>;
}

/** A source rebuilt from its value and its lines (a cached parse): `lineOf` answers as the parsed one did. */
export function sourceFromLines(file: string, value: unknown, lines: Readonly<Record<string, number>>): YamlSource {
  const lineOf = (pointer: string): number | undefined => {
    let at = pointer === '/' ? '' : pointer;
    for (;;) {
      const line = lines[at];
      if (line !== undefined) return line;
      if (at === '') return undefined;
      at = at.slice(0, Math.max(0, at.lastIndexOf('/')));
    }
  };
  return { file, value, lineOf, lines: () => ({ ...lines }) };
}

/** How deeply a repo's YAML may nest (mappings, sequences, flow collections together). */
export const MAX_YAML_DEPTH = 64;

/** How many alias nodes one YAML file may expand: a "billion laughs" file stops here. */
export const MAX_YAML_ALIASES = 100;

/**
 * Parses YAML text; syntax errors (including duplicate keys) become YAML_SYNTAX problems with their line, nesting
 * deeper than MAX_YAML_DEPTH YAML_TOO_DEEP (checked before parsing: the parser itself exhausts the stack or the heap
 * on such input), alias expansion past MAX_YAML_ALIASES YAML_ALIAS_LIMIT. Plain YAML takes the fast path
 * (yaml-fast-path.ts: the same value and lines, five times cheaper); the rest, and every problem, is `yaml`'s.
 */
export function parseYaml(file: string, text: string): { source?: YamlSource; problems: Problem[] } {
  const deep = findExcessiveNesting(text, MAX_YAML_DEPTH);
  if (deep !== undefined) {
    return {
      problems: [
        { code: 'YAML_TOO_DEEP', file, line: deep, message: `yaml nests deeper than ${MAX_YAML_DEPTH} levels` },
      ],
    };
  }
  const fast = readFast(text);
  if (fast) return { source: sourceFromLines(file, fast.value, fast.lines), problems: [] };
  return parseWithYaml(file, text);
}

/** Parses YAML text with the `yaml` library (parseYaml without the depth check and the fast path). */
export function parseWithYaml(file: string, text: string): { source?: YamlSource; problems: Problem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((error) => ({
        code: 'YAML_SYNTAX',
        file,
        line: error.linePos?.[0]?.line,
        message: `yaml syntax: ${error.message.split('\n')[0]}`,
      })),
    };
  }
  const lineOf = (pointer: string): number | undefined => lineAt(doc, lineCounter, pointerKeys(pointer));
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    const aliases = error instanceof ReferenceError && /alias/i.test(error.message);
    return {
      problems: [
        aliases
          ? {
              code: 'YAML_ALIAS_LIMIT',
              file,
              message: `yaml aliases expand too far (more than ${MAX_YAML_ALIASES} per alias): write the values out`,
            }
          : { code: 'YAML_SYNTAX', file, message: `yaml cannot be read: ${error instanceof Error ? error.message : String(error)}` },
      ],
    };
  }
  return { source: { file, value, lineOf, lines: () => allLines(doc, lineCounter) }, problems: [] };
}

/**
 * The first line where YAML nesting exceeds `limit`, or undefined: a conservative estimate from indentation
 * levels, block indicators (`- - x`) and flow brackets outside quotes, so it never needs the parser.
 */
export function findExcessiveNesting(text: string, limit: number): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? '';
    const body = line.trimStart();
    if (flow === 0) {
      if (body === '' || body.startsWith('#')) continue;
      const indent = line.length - body.length;
      while (indents.length > 0 && (indents[indents.length - 1] ?? 0) > indent) indents.pop();
      if (indents.length === 0 || (indents[indents.length - 1] ?? 0) < indent) indents.push(indent);
    }
    const indicators = /^(?:[-?:][ \t]+)*/.exec(body)?.[0].replace(/\s/g, '').length ?? 0;
    let deepest = flow;
    let quote: string | undefined;
    for (const char of body) {
      if (quote) {
        if (char === quote) quote = undefined;
      } else if (char === '"' || char === "'") {
        quote = char;
      } else if (char === '#') {
        break;
      } else if (char === '[' || char === '{') {
        deepest = Math.max(deepest, ++flow);
      } else if ((char === ']' || char === '}') && flow > 0) {
        flow--;
      }
    }
    if (indents.length + indicators + deepest > limit) return index + 1;
  }
  return undefined;
}

/** Runs a compiled ajv schema; every error becomes a SCHEMA problem with file, pointer and line. */
export function schemaProblems(source: YamlSource, validate: ValidateFunction): Problem[] {
  if (validate(source.value)) return [];
  return relevantErrors(validate.errors ?? []).map((error) => {
    const pointer = error.instancePath || '/';
    return {
      code: 'SCHEMA',
      file: source.file,
      line: source.lineOf(error.instancePath),
      path: pointer,
      message: describeSchemaError(error),
    };
  });
}

/** `if`/`then` wrappers repeat the real error below them; drop them and exact duplicates. */
function relevantErrors(errors: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((error) => {
    if (error.keyword === 'if') return false;
    const key = `${error.instancePath}|${error.keyword}|${JSON.stringify(error.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function describeSchemaError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown field "${String(params.additionalProperty)}"`;
    case 'required':
      return `missing required field "${String(params.missingProperty)}"`;
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`;
    default:
      return error.message ?? error.keyword;
  }
}

/** The line of every node of `doc` that has a position, by JSON pointer (`''` for the root). */
function allLines(doc: Document, counter: LineCounter): Record<string, number> {
  const lines: Record<string, number> = {};
  const visit = (node: unknown, pointer: string): void => {
    if (!isNode(node)) return;
    if (node.range) lines[pointer] = counter.linePos(node.range[0]).line;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        const name = String(key);
        visit(pair.value, `${pointer}/${name.includes('~') || name.includes('/') ? name.replace(/~/g, '~0').replace(/\//g, '~1') : name}`);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => visit(item, `${pointer}/${index}`));
    }
  };
  visit(doc.contents, '');
  return lines;
}

function pointerKeys(pointer: string): (string | number)[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
}

function lineAt(doc: Document, counter: LineCounter, keys: (string | number)[]): number | undefined {
  for (let depth = keys.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(keys.slice(0, depth), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}
