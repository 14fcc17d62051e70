/**
 * The floors of the code base, written once: a module may import from its own floor and from the floors below it,
 * never from a floor above, and no import cycle may join two files. `test/unit/layers.test.ts` checks the tree
 * against this list; `reconciler/README.md` explains it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** The floors, lowest first. An entry ending in `/` is a folder, otherwise one file. */
export const LAYERS: readonly (readonly string[])[] = [
  ['reconciler/errors.ts', 'reconciler/model.ts', 'reconciler/version.ts', 'reconciler/lanes.ts', 'reconciler/text-lines.ts'],
  ['reconciler/host/'],
  ['hooks/'],
  ['renderers/'],
  ['reconciler/config/'],
  ['reconciler/secrets/'],
  ['reconciler/cache/'],
  ['reconciler/state/'],
  ['reconciler/source/'],
  ['reconciler/run-context.ts'],
  ['reconciler/fleet/'],
  ['reconciler/stages/'],
  ['reconciler/pipeline.ts'],
  ['reconciler/reconcile.ts'],
  ['reconciler/triggers/'],
  ['reconciler/agent/'],
  ['reconciler/cli/'],
];

/** The folders whose modules are checked; test/ and bench/ may import anything. */
export const CHECKED_ROOTS = ['reconciler', 'renderers', 'hooks'];

/** One import that breaks the layering. */
export interface LayerViolation {
  from: string;
  to: string;
  reason: string;
}

/** The floor of a project-relative path, or undefined when no floor names it. */
export function layerOf(path: string): number | undefined {
  let best: { rank: number; length: number } | undefined;
  LAYERS.forEach((entries, rank) => {
    for (const entry of entries) {
      const match = entry.endsWith('/') ? path.startsWith(entry) : path === entry;
      if (match && (!best || entry.length > best.length)) best = { rank, length: entry.length };
    }
  });
  return best?.rank;
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s(?:[^'"]*?\sfrom\s)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** The project-relative targets of the relative imports in `source`, a file at project-relative `path`. */
export function relativeImports(path: string, source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(IMPORT)) {
    const specifier = (match[1] ?? match[2]) as string;
    found.push(join(dirname(path), specifier).split(sep).join('/').replace(/\.js$/, '.ts'));
  }
  return found;
}

/** Every layering problem of the modules in `files` (project-relative path → source text). */
export function checkLayers(files: ReadonlyMap<string, string>): LayerViolation[] {
  const violations: LayerViolation[] = [];
  const graph = new Map<string, string[]>();
  for (const [path, source] of files) {
    const own = layerOf(path);
    if (own === undefined) {
      violations.push({ from: path, to: path, reason: 'belongs to no floor: add its folder to LAYERS' });
      continue;
    }
    const targets = relativeImports(path, source);
    graph.set(path, targets.filter((target) => files.has(target)));
    for (const target of targets) {
      const theirs = layerOf(target);
      if (theirs === undefined) continue;
      if (theirs > own) violations.push({ from: path, to: target, reason: `imports upward (floor ${own} → ${theirs})` });
    }
  }
  for (const cycle of findCycles(graph)) {
    violations.push({ from: cycle[0] as string, to: cycle[1] as string, reason: `import cycle: ${cycle.join(' → ')}` });
  }
  return violations;
}

/** One cycle per strongly connected group of files that import each other, as a path that returns to its start. */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const onPath: string[] = [];
  const visit = (node: string): void => {
    if (done.has(node)) return;
    const at = onPath.indexOf(node);
    if (at >= 0) {
      cycles.push([...onPath.slice(at), node]);
      return;
    }
    onPath.push(node);
    for (const next of graph.get(node) ?? []) visit(next);
    onPath.pop();
    done.add(node);
  };
  for (const node of graph.keys()) visit(node);
  return cycles;
}

/** The checked modules of the project at `root`: project-relative path → source text. */
export function readModules(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        files.set(relative(root, path).split(sep).join('/'), readFileSync(path, 'utf8'));
      }
    }
  };
  for (const top of CHECKED_ROOTS) walk(resolve(root, top));
  return files;
}
