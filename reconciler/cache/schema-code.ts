/**
 * The repo's JSON Schema validators as ajv standalone code, kept in the cache dir: compiling the schemas (ajv's code
 * generation) is the largest fixed cost of loading a changed YAML file, while loading the generated code costs
 * almost nothing. Keyed by the schemas themselves (a new resource kind changes the role schema, so its key) and
 * the engine version (which pins ajv in the executable); the code is the pack's, checked by its hash like every
 * entry. The code's only imports are ajv's runtime helpers, handed to it from a fixed table, so it runs the same
 * from `node dist` and from the single executable (which has no `require` of package files). The executable carries
 * the code of its own schemas, generated when it is built: even its first run compiles nothing.
 */
import type { ValidateFunction } from 'ajv';
import * as equal from 'ajv/dist/runtime/equal.js';
import * as ucs2length from 'ajv/dist/runtime/ucs2length.js';
import * as uri from 'ajv/dist/runtime/uri.js';
import * as validationError from 'ajv/dist/runtime/validation_error.js';
import { cacheKey, type CachePack } from './pack.js';

/** The ajv options of the repo's schemas: every error at once, no coercion, no defaults. */
const AJV_OPTIONS = { allErrors: true, strict: false, useDefaults: false } as const;

/** What the code may `require`: ajv's runtime helpers (CommonJS modules, each exporting `default`). */
const RUNTIME: Record<string, unknown> = {
  'ajv/dist/runtime/equal': commonJs(equal),
  'ajv/dist/runtime/ucs2length': commonJs(ucs2length),
  'ajv/dist/runtime/uri': commonJs(uri),
  'ajv/dist/runtime/validation_error': commonJs(validationError),
};

type Validators<K extends string> = Record<K, ValidateFunction>;

/** Where validators came from: the executable's own code, the cache dir's, or compiled just now. */
export type SchemaCodeOrigin = 'built-in' | 'cache' | 'compiled';

/** The executable's own copy of the code for the schemas it was built with (packaging/build-executable.mjs). */
declare const EDGE_BUILTIN_SCHEMA_CODE: { schemas: string; code: string } | undefined;

/**
 * The validators of `schemas` (name → schema with an `$id`): the executable's built-in code when they are the
 * schemas it was built with, else cached standalone code, else compiled (and cached).
 */
export async function schemaValidators<K extends string>(
  pack: CachePack,
  schemas: Record<K, Record<string, unknown>>,
): Promise<{ validators: Validators<K>; origin: SchemaCodeOrigin }> {
  const text = JSON.stringify(schemas);
  const names = Object.keys(schemas) as K[];
  if (typeof EDGE_BUILTIN_SCHEMA_CODE === 'object' && EDGE_BUILTIN_SCHEMA_CODE.schemas === text) {
    const builtin = evaluate<K>(EDGE_BUILTIN_SCHEMA_CODE.code, names);
    if (builtin) return { validators: builtin, origin: 'built-in' };
  }
  const key = cacheKey('schema-code', JSON.stringify(AJV_OPTIONS), text);
  const cached = pack.get<string>(key);
  if (typeof cached === 'string') {
    const loaded = evaluate<K>(cached, names);
    if (loaded) return { validators: loaded, origin: 'cache' };
  }
  const code = await generateSchemaCode(schemas);
  const compiled = evaluate<K>(code, names);
  if (!compiled) throw new Error('ajv standalone code did not load');
  pack.put(key, code);
  return { validators: compiled, origin: 'compiled' };
}

/** ajv's standalone code (CommonJS, one export per schema name) for `schemas`. */
export async function generateSchemaCode(schemas: Record<string, Record<string, unknown>>): Promise<string> {
  // ajv itself (a large module graph) loads only when there is code to generate.
  const [{ Ajv }, standalone] = await Promise.all([import('ajv'), import('ajv/dist/standalone/index.js')]);
  // The module is its function, which also carries itself as `default` (how TypeScript sees it).
  const standaloneCode = standalone.default.default;
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
  const refs: Record<string, string> = {};
  for (const [name, schema] of Object.entries(schemas)) {
    ajv.addSchema(schema);
    refs[name] = String(schema.$id);
  }
  return standaloneCode(ajv, refs);
}

/** Runs standalone code (CommonJS) and returns its validators; undefined when one is missing or it needs more. */
function evaluate<K extends string>(code: string, names: K[]): Validators<K> | undefined {
  const module = { exports: {} as Record<string, unknown> };
  const require = (id: string) => {
    if (!(id in RUNTIME)) throw new Error(`ajv standalone code requires ${id}, which is not in its runtime table`);
    return RUNTIME[id];
  };
  try {
    // The code is ajv's own output for our schemas, read back from the private, hash-checked cache pack.
    new Function('require', 'module', 'exports', code)(require, module, module.exports);
  } catch {
    return undefined;
  }
  const validators = {} as Validators<K>;
  for (const name of names) {
    const validate = module.exports[name];
    if (typeof validate !== 'function') return undefined;
    validators[name] = validate as ValidateFunction;
  }
  return validators;
}

/**
 * A CommonJS module's `exports` from its namespace as imported: Node (and esbuild for ESM importers) hand over
 * `exports` as `default`; a bundler may instead flatten it (then `default` is the helper itself).
 */
function commonJs(namespace: { default?: unknown }): unknown {
  const outer = namespace.default as { default?: unknown } | undefined;
  return outer && typeof outer === 'object' && 'default' in outer ? outer : namespace;
}
