/**
 * The repo's JSON Schema validators as ajv standalone code, kept in the cache dir: compiling the schemas (ajv's code
 * generation) is the largest fixed cost of loading a changed YAML file, while loading the generated code costs
 * almost nothing. Keyed by the schemas themselves (a new resource kind changes the role schema, so its key) and
 * the ajv version; the code is the pack's, checked by its hash like every entry. Where code cannot be loaded this
 * way (the single executable has no `require` of ajv's runtime files), the schemas are compiled as before.
 */
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { cacheKey, type CachePack } from './pack.js';

/** The ajv options of the repo's schemas: every error at once, no coercion, no defaults. */
const AJV_OPTIONS = { allErrors: true, strict: false, useDefaults: false } as const;

type Validators<K extends string> = Record<K, ValidateFunction>;

/** The validators of `schemas` (name → schema with an `$id`), from cached standalone code or compiled (and cached). */
export function schemaValidators<K extends string>(pack: CachePack, schemas: Record<K, Record<string, unknown>>): Validators<K> {
  const require = createRequire(import.meta.url);
  const ajvVersion = (require('ajv/package.json') as { version: string }).version;
  const key = cacheKey('schema-code', ajvVersion, JSON.stringify(AJV_OPTIONS), JSON.stringify(schemas));
  const cached = pack.get<string>(key);
  if (typeof cached === 'string') {
    const loaded = evaluate<K>(cached, require, Object.keys(schemas) as K[]);
    if (loaded) return loaded;
  }
  const { default: Ajv } = require('ajv') as { default: new (options: object) => { addSchema(schema: object): unknown } };
  const { default: standaloneCode } = require('ajv/dist/standalone') as { default: (ajv: unknown, refs: Record<string, string>) => string };
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
  const refs: Record<string, string> = {};
  for (const [name, schema] of Object.entries(schemas) as [K, Record<string, unknown>][]) {
    ajv.addSchema(schema);
    refs[name] = String(schema.$id);
  }
  const code = standaloneCode(ajv, refs);
  const compiled = evaluate<K>(code, require, Object.keys(schemas) as K[]);
  if (!compiled) throw new Error('ajv standalone code did not load');
  pack.put(key, code);
  return compiled;
}

/** Runs standalone code (CommonJS) and returns its validators; undefined when one is missing. */
function evaluate<K extends string>(code: string, require: NodeJS.Require, names: K[]): Validators<K> | undefined {
  const module = { exports: {} as Record<string, unknown> };
  // The code is ajv's own output for our schemas, read back from the private, hash-checked cache pack.
  new Function('require', 'module', 'exports', code)(require, module, module.exports);
  const validators = {} as Validators<K>;
  for (const name of names) {
    const validate = module.exports[name];
    if (typeof validate !== 'function') return undefined;
    validators[name] = validate as ValidateFunction;
  }
  return validators;
}
