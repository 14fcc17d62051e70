/**
 * The validator verdict cache: a kind's validator passed on exactly these staged files (every field of the files
 * of that kind, their content by hash, and the path, kind and hash of every other file of the host, which a
 * validator may read: caddy imports), with these guard rails. A content hash covers what the kind's validator
 * judges (renderers/types.ts `verdictText`: a Caddyfile without its comment lines). Only passes are kept; a
 * failure is always found again by the real tool, so its problems are always current.
 */
import type { Guards, ResourceKind } from '../model.js';
import type { RenderedFile } from '../../renderers/types.js';
import { rendererFor } from '../../renderers/registry.js';
import { cacheKey, digestOf, type CachePack } from './pack.js';

/** What a validator is given besides the files. */
export interface VerdictContext {
  guards: Guards;
  externalExecPrefixes: readonly string[];
}

/** Passing verdicts by the file set they were given. */
export class VerdictCache {
  private readonly hashes = new WeakMap<RenderedFile, string>();

  constructor(private readonly pack: CachePack) {}

  /**
   * The key of validating `kind`'s files among `all` under `context`; with scope `host` (the default) every file of
   * the host is part of it, with `kind` only the kind's own (renderers/types.ts `verdictScope`).
   */
  keyFor(kind: ResourceKind, all: readonly RenderedFile[], context: VerdictContext, scope: 'file' | 'kind' | 'host' = 'host'): string {
    const ofKind = all.filter((file) => file.kind === kind).map((file) => ({ ...file, content: this.hash(file) }));
    const others = scope !== 'host' ? '' : digestOf(all.map((file) => `${file.path}\0${file.kind}\0${this.hash(file)}`).join('\n'));
    return cacheKey('verdict', kind, scope, JSON.stringify(context), JSON.stringify(ofKind), others);
  }

  /** True when this exact set passed before. */
  passed(key: string): boolean {
    return this.pack.get<boolean>(key) === true;
  }

  /** Records that the set passed. */
  pass(key: string): void {
    this.pack.put(key, true);
  }

  private hash(file: RenderedFile): string {
    let hash = this.hashes.get(file);
    if (!hash) {
      const judged = rendererFor(file.kind).verdictText;
      hash = digestOf(judged ? judged(file.content) : file.content);
      this.hashes.set(file, hash);
    }
    return hash;
  }
}
