/**
 * The caches of one run, opened together from the state dir's `cache/` folder (or in memory for a command without
 * a state dir): parsed YAML, renders, validator verdicts. Each is a pack (pack.ts) read on first use and written
 * by `save()`; the no-op path never opens them.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { repoSchemas } from '../config/repo-schemas.js';
import { CachePack, cacheKey, type PackCounters } from './pack.js';
import { schemaValidators, type SchemaCodeOrigin } from './schema-code.js';
import { RenderCache } from './render-cache.js';
import { VerdictCache } from './verdict-cache.js';
import { YamlCache } from './yaml-cache.js';

/** Remembers which blobs the secret scan found clean (by git blob id: the scan depends on the bytes only). */
export interface ScanMemory {
  isClean(blob: string): boolean;
  markClean(blob: string): void;
}

/** The caches the plan stages use. */
export interface Caches {
  yaml: YamlCache;
  render: RenderCache;
  verdicts: VerdictCache;
  /** Blobs the secret scan found clean, by git blob id (source/repo-files.ts). */
  scans: ScanMemory;
  /**
   * The validators of edge.yaml, host and role files as ajv standalone code (schema-code.ts), loaded on first call,
   * and where the code came from.
   */
  repoValidators(): Promise<{ validators: Record<'edge' | 'host' | 'role', ValidateFunction>; origin: SchemaCodeOrigin }>;
  /** Writes what changed; never throws (a cache that cannot be written only costs time). Returns the error, if any. */
  save(): Promise<Error | undefined>;
  /** Hits, misses and damaged entries per cache, for the log and the tests. */
  counters(): Record<'yaml' | 'render' | 'verdicts', PackCounters>;
}

const NAMESPACES = ['yaml', 'render', 'verdicts', 'scans', 'schemas'] as const;

function assemble(packs: Record<(typeof NAMESPACES)[number], CachePack>): Caches {
  const render = new RenderCache(packs.render);
  let validators: ReturnType<Caches['repoValidators']> | undefined;
  return {
    repoValidators() {
      validators ??= schemaValidators(packs.schemas, repoSchemas());
      return validators;
    },
    yaml: new YamlCache(packs.yaml),
    render,
    verdicts: new VerdictCache(packs.verdicts),
    scans: {
      isClean: (blob) => packs.scans.get<boolean>(cacheKey('scan', blob)) === true,
      markClean: (blob) => packs.scans.put(cacheKey('scan', blob), true),
    },
    async save() {
      try {
        await Promise.all(NAMESPACES.map((namespace) => packs[namespace].save()));
        return undefined;
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    },
    counters: () => ({ yaml: { ...packs.yaml.counters }, render: render.counters, verdicts: { ...packs.verdicts.counters } }),
  };
}

/** Opens the caches in `dir` (`<stateDir>/cache`), removing temp files a killed run left there. */
export async function openCaches(dir: string): Promise<Caches> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (/\.tmp-[0-9a-f]{8}$/.test(name)) await rm(join(dir, name), { force: true });
  }
  const [yaml, render, verdicts, scans, schemas] = await Promise.all(NAMESPACES.map((namespace) => CachePack.open(dir, namespace)));
  return assemble({ yaml: yaml as CachePack, render: render as CachePack, verdicts: verdicts as CachePack, scans: scans as CachePack, schemas: schemas as CachePack });
}

/** Caches that live as long as the process (check, plan without a state dir, tests). */
export function memoryCaches(): Caches {
  return assemble({ yaml: CachePack.inMemory(), render: CachePack.inMemory(), verdicts: CachePack.inMemory(), scans: CachePack.inMemory(), schemas: CachePack.inMemory() });
}
