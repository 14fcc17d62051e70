/**
 * The parse cache of the repo's YAML: a file that parsed and passed its JSON Schema is kept as its value and the
 * line of each of its nodes, keyed by the schema and the hash of its text. The same text checked against the same
 * schema by the same engine passes the same way, so a hit skips the parser and the schema check. Files with
 * problems are never stored: their problems are always found again.
 */
import { sourceFromLines, type YamlSource } from '../config/yaml-source.js';
import { cacheKey, digestOf, type CachePack } from './pack.js';

interface ParsedEntry {
  value: unknown;
  lines: Record<string, number>;
}

/** Parsed and schema-checked YAML by content. */
export class YamlCache {
  constructor(private readonly pack: CachePack) {}

  /** The source of `file` when this text passed `schema` before. */
  get(file: string, schema: string, text: string): YamlSource | undefined {
    const entry = this.pack.get<ParsedEntry>(cacheKey('yaml', schema, digestOf(text)));
    return entry && typeof entry.lines === 'object' ? sourceFromLines(file, entry.value, entry.lines) : undefined;
  }

  /** Keeps a source that parsed and passed `schema`. */
  put(schema: string, text: string, source: YamlSource): void {
    // A value JSON cannot carry as it is (`.inf`, `.nan`) is not stored: a hit must give exactly the parsed value.
    if (!source.lines || !isJsonSafe(source.value)) return;
    this.pack.put(cacheKey('yaml', schema, digestOf(text)), { value: source.value, lines: source.lines() });
  }
}

/** True when JSON carries `value` exactly: plain objects, arrays, strings, booleans, null and finite numbers. */
export function isJsonSafe(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJsonSafe);
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).every(isJsonSafe);
}
