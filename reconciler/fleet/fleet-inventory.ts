/**
 * The inventory of the fleet and the subjects of its commits, read from this host's own copy of the desired-state
 * repo: the git mirror in the state dir (or the local checkout it follows, or the plain directory). Only
 * `edge.yaml` and `hosts/*.yaml` of one revision are read, through one `git cat-file --batch`, and cached by
 * revision: commits never change.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import type { InventoryHost } from './fleet-model.js';

/** The hosts of one revision and its waves. */
export interface FleetInventory {
  revision: string;
  hosts: InventoryHost[];
  waves: string[][];
}

/** Where the desired state is: the repo of the host config, its folder, and the agent's state dir. */
export interface InventorySource {
  repo: string;
  path?: string;
  stateDir: string;
}

/** The largest host or edge file read for the inventory. */
const MAX_FILE_BYTES = 256 * 1024;

const HOST_FILE = /^([a-z0-9][a-z0-9-]*)\.ya?ml$/;

/**
 * The git dirs that may hold the revisions: the mirror the agent fetches into (remote and bare repos), then the
 * checkout it follows (a local work tree).
 */
export async function gitDirsOf(source: InventorySource): Promise<string[]> {
  const dirs: string[] = [];
  const mirror = join(source.stateDir, 'repo.git');
  if (await isDir(join(mirror, 'objects'))) dirs.push(mirror);
  if (source.repo.startsWith('/') && (await isDir(source.repo))) dirs.push(source.repo);
  return dirs;
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * Reads objects by name (`<rev>:<path>` or a commit id) with one `git cat-file --batch`; a missing one is absent
 * from the map, one over `maxBytes` too.
 */
export async function catObjects(gitDir: string, names: readonly string[], maxBytes = MAX_FILE_BYTES): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  if (names.length === 0) return found;
  const result = await execa('git', ['-C', gitDir, 'cat-file', '--batch'], { input: `${names.join('\n')}\n`, encoding: 'buffer', reject: false });
  if (result.exitCode !== 0) return found;
  const out = Buffer.from(result.stdout);
  let at = 0;
  for (const name of names) {
    const end = out.indexOf(0x0a, at);
    if (end < 0) break;
    const header = out.subarray(at, end).toString('utf8');
    at = end + 1;
    // `<sha> <type> <size>`, or `<name> missing` / `<name> ambiguous`.
    const match = /^[0-9a-f]+ (\w+) (\d+)$/.exec(header);
    if (!match) continue;
    const size = Number(match[2]);
    if (size <= maxBytes) found.set(name, out.subarray(at, at + size));
    at += size + 1;
  }
  return found;
}

/** The first line of each commit's message, for the commits any of `gitDirs` has. */
export async function commitSubjects(gitDirs: readonly string[], revisions: readonly string[]): Promise<Map<string, string>> {
  const subjects = new Map<string, string>();
  let wanted = [...new Set(revisions.filter((revision) => /^[0-9a-f]{40,64}$/.test(revision)))];
  for (const dir of gitDirs) {
    if (wanted.length === 0) break;
    const objects = await catObjects(dir, wanted.map((revision) => `${revision}^{commit}`), 1024 * 1024);
    for (const revision of wanted) {
      const body = objects.get(`${revision}^{commit}`)?.toString('utf8');
      if (body === undefined) continue;
      const blank = body.indexOf('\n\n');
      subjects.set(revision, blank < 0 ? '' : (body.slice(blank + 2).split('\n')[0] ?? '').trim());
    }
    wanted = wanted.filter((revision) => !subjects.has(revision));
  }
  return subjects;
}

/** The hosts of hosts/*.yaml (name and address) and edge.yaml's waves, from parsed texts; broken files are skipped. */
export function inventoryFromTexts(revision: string, edgeText: string | undefined, hostTexts: ReadonlyMap<string, string>): FleetInventory {
  const hosts: InventoryHost[] = [];
  for (const [name, textOf] of [...hostTexts].sort(([a], [b]) => a.localeCompare(b))) {
    const value = safeParse(textOf);
    const address = typeof value?.address === 'string' ? value.address : '';
    hosts.push({ name, address });
  }
  const edge = safeParse(edgeText);
  const waves = Array.isArray(edge?.waves)
    ? edge.waves.map((wave: unknown) => (Array.isArray(wave) ? wave.filter((host): host is string => typeof host === 'string') : []))
    : [];
  return { revision, hosts, waves };
}

function safeParse(textOf: string | undefined): Record<string, unknown> | undefined {
  if (textOf === undefined) return undefined;
  try {
    const value: unknown = parse(textOf);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const cache = new Map<string, FleetInventory>();

/**
 * The inventory of `revision`: from git for a commit, from the plain directory for a `tree:` revision (not cached:
 * a directory changes in place). Undefined when no copy of the repo here holds it.
 */
export async function readInventory(source: InventorySource, revision: string): Promise<FleetInventory | undefined> {
  const folder = source.path ? `${source.path.replace(/\/+$/, '')}/` : '';
  if (revision.startsWith('tree:')) return readDirectoryInventory(join(source.repo, folder), revision);
  const key = `${source.repo}\0${folder}\0${revision}`;
  const cached = cache.get(key);
  if (cached) return cached;
  for (const dir of await gitDirsOf(source)) {
    const listed = await execa('git', ['-C', dir, 'ls-tree', '-z', '--name-only', '--end-of-options', `${revision}:${folder}hosts`], { reject: false });
    if (listed.exitCode !== 0) continue;
    const names = listed.stdout.split('\0').filter((name) => HOST_FILE.test(name));
    const specs = [`${revision}:${folder}edge.yaml`, ...names.map((name) => `${revision}:${folder}hosts/${name}`)];
    const objects = await catObjects(dir, specs);
    const hostTexts = new Map(names.flatMap((name) => {
      const body = objects.get(`${revision}:${folder}hosts/${name}`);
      return body ? [[(HOST_FILE.exec(name) as RegExpExecArray)[1] as string, body.toString('utf8')] as const] : [];
    }));
    const inventory = inventoryFromTexts(revision, objects.get(specs[0] as string)?.toString('utf8'), hostTexts);
    if (cache.size > 32) cache.clear();
    cache.set(key, inventory);
    return inventory;
  }
  return undefined;
}

async function readDirectoryInventory(dir: string, revision: string): Promise<FleetInventory | undefined> {
  const names = await readdir(join(dir, 'hosts')).catch(() => undefined);
  if (!names) return undefined;
  const read = (path: string) => readFile(path, 'utf8').catch(() => undefined);
  const hostTexts = new Map<string, string>();
  for (const name of names.filter((entry) => HOST_FILE.test(entry))) {
    const textOf = await read(join(dir, 'hosts', name));
    if (textOf !== undefined && textOf.length <= MAX_FILE_BYTES) hostTexts.set((HOST_FILE.exec(name) as RegExpExecArray)[1] as string, textOf);
  }
  return inventoryFromTexts(revision, await read(join(dir, 'edge.yaml')), hostTexts);
}
