/**
 * The render cache: a resource's rendered files, kept under a key of its kind and its declaration (spec, role,
 * source lines), with what the render used: the templates (by content hash), the secrets (by value hash) and every
 * value it read of the host and the template data (tracked-values.ts). Generic over kinds: any renderer is wrapped
 * the same way, a new kind needs no code here. A stored render is reused only when all of that is unchanged; a render
 * that fails, or that does something the tracking cannot follow, is never stored.
 */
import type { Renderer, RenderInput, RenderedFile, RenderedText, Templates } from '../../renderers/types.js';
import { RenderProblems } from '../../renderers/types.js';
import type { SecretSource } from '../../renderers/template.js';
import { cacheKey, digestOf, type CachePack, type PackCounters } from './pack.js';
import { encodeRead, encodedReadsHold, ReadLog, SEPARATOR, tracked } from './tracked-values.js';

/** How many renders of one resource are kept (hosts that share a role but render it differently). */
export const MAX_VARIANTS = 8;

/** One stored render of a resource. */
interface RenderVariant {
  /** The reads, encoded (tracked-values.ts `encodeRead`). */
  reads: string[];
  /** Template file → sha256 of its text (inline content is part of the declaration, so of the key). */
  templates: [string, string][];
  /** Secret name → sha256 of its value (`missing` when absent). */
  secrets: [string, string][];
  files: RenderedFile[];
}

/** What a render may read besides its input: the repo's templates and the host's secrets. */
export interface RenderSources {
  templates: ReadonlyMap<string, string>;
  secrets: SecretSource;
}

/** A secret's value as it enters a cache entry: only a hash. */
function secretDigest(value: string | undefined): string {
  return value === undefined ? 'missing' : digestOf(`secret\0${value}`);
}

/** Renders resources through a pack: a stored render when its inputs are unchanged, a fresh one otherwise. */
export class RenderCache {
  private hits = 0;
  private misses = 0;
  /** Digests of this run's template texts and secret values: a few texts, asked for by thousands of resources. */
  private readonly digests = new Map<string, { text: string | undefined; digest: string }>();

  constructor(private readonly pack: CachePack) {}

  /** Resources taken from the cache, rendered afresh, and damaged entries dropped. */
  get counters(): PackCounters {
    return { hits: this.hits, misses: this.misses, corrupt: this.pack.counters.corrupt };
  }

  /** The files `renderer` makes of `input`; the same files, value for value, as `renderer.render(input)`. */
  render(renderer: Renderer, input: RenderInput, sources: RenderSources): RenderedFile[] {
    const key = cacheKey('render', renderer.kind, JSON.stringify(input.resource));
    const variants = this.pack.get<RenderVariant[]>(key) ?? [];
    const roots = { host: input.host, data: input.data };
    for (const variant of variants) {
      if (
        variant.templates.every(([file, digest]) => this.templateDigest(sources, file) === digest) &&
        variant.secrets.every(([name, digest]) => this.secretDigest(sources, name) === digest) &&
        encodedReadsHold(variant.reads, roots)
      ) {
        this.hits++;
        return variant.files;
      }
    }
    this.misses++;
    const fresh = this.track(renderer, input, sources);
    if (!fresh) return renderer.render(input);
    this.pack.put(key, [fresh, ...variants].slice(0, MAX_VARIANTS));
    return fresh.files;
  }

  /** sha256 of a template's text, once per text (a text that changed under the same name is hashed again). */
  private templateDigest(sources: RenderSources, file: string): string {
    return this.memo(`template\0${file}`, sources.templates.get(file), (text) => digestOf(text ?? '\0none'));
  }

  private secretDigest(sources: RenderSources, name: string): string {
    return this.memo(`secret\0${name}`, sources.secrets.get(name), secretDigest);
  }

  private memo(key: string, text: string | undefined, digest: (text: string | undefined) => string): string {
    const known = this.digests.get(key);
    if (known && known.text === text) return known.digest;
    const fresh = { text, digest: digest(text) };
    this.digests.set(key, fresh);
    return fresh.digest;
  }

  /** Renders `input` with every read recorded; undefined when the render could not be tracked. */
  private track(renderer: Renderer, input: RenderInput, sources: RenderSources): RenderVariant | undefined {
    const log = new ReadLog();
    const used: RenderedText[] = [];
    const engine: Templates = {
      render(resource, data, options) {
        const text = input.engine.render(resource, data, options);
        used.push(text);
        return text;
      },
    };
    let files: RenderedFile[];
    try {
      files = renderer.render({ resource: input.resource, host: tracked(input.host, log, ['host']), data: tracked(input.data, log, ['data']), engine });
    } catch (error) {
      if (error instanceof RenderProblems) throw error;
      // The renderer did something the proxies refuse (changing its input): render untracked, store nothing.
      return undefined;
    } finally {
      log.active = false;
    }
    const reads = log.list();
    // A key holding the encoding's separator could not be read back exactly: such a render is not stored.
    if (reads.some((read) => read.path.some((segment) => segment.includes(SEPARATOR)))) return undefined;
    const templates = new Map<string, string>();
    const secrets = new Map<string, string>();
    for (const text of used) {
      if (sources.templates.has(text.file)) templates.set(text.file, this.templateDigest(sources, text.file));
      for (const name of text.secrets) secrets.set(name, this.secretDigest(sources, name));
    }
    return {
      reads: reads.map(encodeRead),
      templates: [...templates],
      secrets: [...secrets],
      files: JSON.parse(JSON.stringify(files)) as RenderedFile[],
    };
  }
}
