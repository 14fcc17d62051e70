/**
 * The agent's own state dir (default /var/lib/edge-reconciler): generations with the content of every managed
 * file, the journal of the transaction in flight, the status document, bad revisions, the pin and the lock.
 * Every write is temp + fsync + rename (+ fsync of the directory); the dir is private (0700): generations hold
 * rendered env files, which hold secrets.
 */
import { access, mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { linkSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EdgeError } from '../errors.js';
import { crashPoint } from '../host/crash-points.js';
import { makeDurable } from '../host/durable.js';
import { syncDir } from '../host/host.js';
import { contentHash, sha256, type InventoryEntry, type ManagedFile } from './inventory.js';
import { acquireLock, type Unlock } from './lock.js';
import { CopyStats } from './copy-stats.js';
import type { HealthCheckSpec } from '../model.js';

/** What became of a generation. */
export type GenerationResult = 'pending' | 'good' | 'failed' | 'rolled-back' | 'interrupted';

/** `generations/<n>/meta.json`. */
export interface GenerationMeta {
  generation: number;
  revision: string;
  host: string;
  createdAt: string;
  result: GenerationResult;
  reason?: string;
  inventory: InventoryEntry[];
  /** The checks that prove this generation healthy (re-run after a rollback to it). */
  health: HealthCheckSpec[];
  /** How those checks run on this host: deadlines from edge.yaml, standby from the host file. */
  healthPolicy: HealthPolicy;
  /** A manual rollback made this generation from an older one. */
  restoredFrom?: number;
  /** The fingerprint of the rendering inputs besides the revision (see inputs.ts), and the secrets it used. */
  inputs?: string;
  secretNames?: string[];
  /** The app releases this generation puts live (its `current` links name them). */
  releases?: AppRelease[];
}

/** One app's release as a generation records it: the resolved commit, where it came from, how it was built. */
export interface AppRelease {
  app: string;
  sha: string;
  /** The tag or the followed branch it was resolved from (absent for a pinned rev). */
  ref?: string;
  /** Set when the app follows a branch: the no-op re-resolves it, and app push webhooks name it. */
  follow?: string;
  /** The repo as declared (before the host config's insteadOf). */
  repo: string;
  builtAt: string;
  buildSeconds: number;
}

/** How a generation's health checks run. */
export interface HealthPolicy {
  deadlineSeconds: number;
  intervalSeconds: number;
  standby: boolean;
}

/** A revision the agent will not retry until a newer one arrives. */
export interface BadRevision {
  revision: string;
  markedAt: string;
  reason: string;
  generation?: number;
  /**
   * The app releases of the failed generation: the pair (revision, these SHAs) is what is bad, so the same revision
   * with a new commit of a followed branch or a moved tag is tried again.
   */
  releases?: { app: string; sha: string; ref?: string }[];
}

/** Set by `edge-reconciler rollback`: the host stays on this generation until a newer commit arrives. */
export interface Pin {
  generation: number;
  /** The revision that was live when the pin was set; only a different revision unpins. */
  pinnedAgainst?: string;
  reason: string;
  at: string;
}

/** The private state dir of one agent. */
export class StateStore {
  /** Parsed generation metas by number, with the stamp of the file they were parsed from. */
  private readonly metas = new Map<number, { stamp: string; meta: GenerationMeta }>();

  constructor(readonly dir: string) {}

  get journalPath(): string {
    return join(this.dir, 'journal.json');
  }
  get statusPath(): string {
    return join(this.dir, 'status.json');
  }
  get backupDir(): string {
    return join(this.dir, 'txn', 'backup');
  }
  get txnDir(): string {
    return join(this.dir, 'txn');
  }
  private get generationsDir(): string {
    return join(this.dir, 'generations');
  }

  /** Creates the dir (0700) and its parts. */
  async init(): Promise<void> {
    await mkdir(this.generationsDir, { recursive: true, mode: 0o700 });
  }

  /** Writes JSON atomically. */
  async writeJson(path: string, value: unknown): Promise<void> {
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** Reads JSON, or undefined when the file does not exist; a file that does not parse is STATE_DAMAGED. */
  async readJson<T>(path: string, fix = 'restore it from a backup or move it aside'): Promise<T | undefined> {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw stateDamaged(path, `it cannot be read (${error.code ?? error.message})`, fix, error);
    });
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw stateDamaged(path, text.trim() === '' ? 'it is empty' : 'it is not valid JSON', fix, error);
    }
  }

  /** Generation numbers, ascending; a directory without meta.json (a prune cut short) is not a generation. */
  async generations(): Promise<number[]> {
    const numbers = await this.generationDirs();
    const complete = await Promise.all(numbers.map((n) => access(this.metaPath(n)).then(() => true, () => false)));
    return numbers.filter((_, index) => complete[index]);
  }

  /** Every numbered directory under generations/, complete or not, ascending. */
  async generationDirs(): Promise<number[]> {
    const entries = await readdir(this.generationsDir).catch(() => [] as string[]);
    return entries.filter((name) => /^\d+$/.test(name)).map(Number).sort((a, b) => a - b);
  }

  /** `generations/<n>/meta.json`. */
  metaPath(n: number): string {
    return join(this.generationsDir, String(n), 'meta.json');
  }

  /** The meta of generation `n`; a missing generation is GENERATION_MISSING, a damaged one STATE_DAMAGED. */
  async readGeneration(n: number): Promise<GenerationMeta> {
    const path = this.metaPath(n);
    // A run asks for the live meta several times (binding, recovery, live record, pruning): parsed once while its
    // file is the same (meta files are replaced by rename, never written in place, so inode and ctime tell).
    const stamp = fileStamp(path);
    const known = this.metas.get(n);
    if (stamp && known?.stamp === stamp) return known.meta;
    const meta = await this.readJson<GenerationMeta>(path, `move ${join(this.generationsDir, String(n))} aside; history and rollback then skip it`);
    if (!meta) {
      throw new EdgeError('GENERATION_MISSING', `generation ${n} does not exist (${path} is missing)`, { stage: 'fetch', retry: 'stuck' });
    }
    if (typeof meta !== 'object' || meta.generation !== n || !Array.isArray(meta.inventory) || typeof meta.revision !== 'string') {
      throw stateDamaged(path, 'it does not hold the meta of this generation', `move ${join(this.generationsDir, String(n))} aside`);
    }
    if (stamp) this.metas.set(n, { stamp, meta: deepFreeze(meta) });
    return meta;
  }

  /** Every readable generation's meta, newest first; a damaged one is left out (the next run names it). */
  async history(): Promise<GenerationMeta[]> {
    const numbers = await this.generations();
    const metas = await Promise.all(numbers.reverse().map((n) => this.readGeneration(n).catch(() => undefined)));
    return metas.filter((meta) => meta !== undefined);
  }

  /** The newest generation marked good, if any. */
  async lastGood(): Promise<GenerationMeta | undefined> {
    for (const n of (await this.generations()).reverse()) {
      const meta = await this.readGeneration(n);
      if (meta.result === 'good') return meta;
    }
    return undefined;
  }

  /**
   * Stores a new generation: the content of every file and its meta, written into a temp dir, made durable at once
   * (host/durable.ts), and renamed into place, so a generation dir is either complete or absent, and survives a
   * power cut once renamed.
   */
  async createGeneration(
    meta: Omit<GenerationMeta, 'generation'>,
    files: readonly ManagedFile[],
    reuse?: GenerationMeta,
    copies: CopyStats = CopyStats.inMemory(),
  ): Promise<GenerationMeta> {
    const numbers = await this.generationDirs();
    const generation = (numbers.at(-1) ?? 0) + 1;
    const full: GenerationMeta = { ...meta, generation };
    const temp = join(this.generationsDir, `${GENERATION_TEMP_PREFIX}${generation}.${randomBytes(4).toString('hex')}`);
    await mkdir(join(temp, 'files'), { recursive: true, mode: 0o700 });
    // Files unchanged since `reuse` are hard links to its copies (a one-file change stores one file), but only
    // a copy that still matches its hash (read, or vouched for by its stat in `copies`): a damaged one is written
    // afresh, not carried forward.
    const unchanged = new Map((reuse?.inventory ?? []).map((entry) => [entry.path, entry.sha256]));
    const dirs = new Set<string>([temp, join(temp, 'files')]);
    const written: string[] = [];
    // Synchronous links, directories and writes: thousands of them, each cheaper than its trip through the thread pool.
    for (const file of files) {
      const path = join(temp, 'files', file.path);
      if (!dirs.has(dirname(path))) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      for (let dir = dirname(path); !dirs.has(dir); dir = dirname(dir)) dirs.add(dir);
      const hash = contentHash(file);
      if (reuse && unchanged.get(file.path) === hash) {
        const source = join(this.generationsDir, String(reuse.generation), 'files', file.path);
        if (copies.intact(source, hash) && linked(source, path)) continue;
      }
      writeFileSync(path, file.content, { flag: 'wx', mode: 0o600 });
      written.push(path);
    }
    writeFileSync(join(temp, 'meta.json'), `${JSON.stringify(full, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
    written.push(join(temp, 'meta.json'));
    await makeDurable(written, [...dirs]);
    await rename(temp, join(this.generationsDir, String(generation)));
    await syncDir(this.generationsDir);
    return full;
  }

  /** Updates the result of a generation. */
  async setResult(n: number, result: GenerationResult, reason?: string): Promise<void> {
    const updated: GenerationMeta = { ...(await this.readGeneration(n)), result, ...(reason ? { reason } : {}) };
    const path = this.metaPath(n);
    await this.writeJson(path, updated);
    // The file is what this process just wrote: the next reader of this run need not parse megabytes back.
    const stamp = fileStamp(path);
    if (stamp) this.metas.set(n, { stamp, meta: deepFreeze(updated) });
  }

  /** The files of a generation with their content, checked against the inventory's hashes. */
  async generationFiles(n: number): Promise<ManagedFile[]> {
    const meta = await this.readGeneration(n);
    return Promise.all(
      meta.inventory.map(async ({ sha256: expected, ...entry }) => {
        const content = await readFile(join(this.generationsDir, String(n), 'files', entry.path), 'utf8');
        if (sha256(content) !== expected) throw new Error(`generation ${n}: stored ${entry.path} does not match its hash`);
        return { ...entry, content };
      }),
    );
  }

  /**
   * Keeps the newest `keep` generations, the newest good one and every generation in `protect` (the live one, a
   * pinned one). Each goes by rename then remove: a kill leaves a hidden leftover, never a half generation.
   */
  async prune(keep: number, protect: Iterable<number> = []): Promise<number[]> {
    const numbers = await this.generationDirs();
    const kept = new Set(protect);
    const good = (await this.lastGood())?.generation;
    if (good !== undefined) kept.add(good);
    const pruned: number[] = [];
    for (const n of numbers.slice(0, Math.max(0, numbers.length - Math.max(1, keep)))) {
      if (kept.has(n)) continue;
      const doomed = join(this.generationsDir, `${PRUNED_PREFIX}${n}.${randomBytes(4).toString('hex')}`);
      await rename(join(this.generationsDir, String(n)), doomed);
      await syncDir(this.generationsDir);
      crashPoint('prune:renamed');
      await removeTree(doomed);
      pruned.push(n);
    }
    return pruned;
  }

  /** Removes what a kill left under generations/: temp and pruned leftovers, numbered dirs without meta.json. */
  async removePartialGenerations(): Promise<string[]> {
    const entries = await readdir(this.generationsDir).catch(() => [] as string[]);
    const complete = new Set(await this.generations());
    const partial = entries.filter(
      (name) => name.startsWith(GENERATION_TEMP_PREFIX) || name.startsWith(PRUNED_PREFIX) || (/^\d+$/.test(name) && !complete.has(Number(name))),
    );
    for (const name of partial) await rm(join(this.generationsDir, name), { recursive: true, force: true });
    return partial;
  }

  /** Revisions marked bad. */
  async badRevisions(): Promise<BadRevision[]> {
    return (await this.readJson<BadRevision[]>(join(this.dir, 'bad-revisions.json'))) ?? [];
  }

  /** Marks a revision bad (kept to the newest 50). */
  async markBad(entry: BadRevision): Promise<void> {
    const list = (await this.badRevisions()).filter((bad) => bad.revision !== entry.revision || !sameReleases(bad, entry));
    await this.writeJson(join(this.dir, 'bad-revisions.json'), [...list, entry].slice(-50));
  }

  /** The pin set by a manual rollback, if any. */
  async pin(): Promise<Pin | undefined> {
    return this.readJson<Pin>(join(this.dir, 'pin.json'));
  }

  /** Sets or clears the pin. */
  async setPin(pin: Pin | undefined): Promise<void> {
    const path = join(this.dir, 'pin.json');
    if (pin) await this.writeJson(path, pin);
    else await unlink(path).catch(() => undefined);
  }

  /**
   * Takes the lock for one reconcile (see lock.ts). A live holder makes this wait up to `waitMs`, then refuse with
   * `LOCKED`, naming the holder; the kernel drops the lock of a holder that died.
   */
  lock(waitMs = 0): Promise<Unlock> {
    return acquireLock(join(this.dir, 'lock'), waitMs);
  }
}

/** Two bad entries of one revision name the same releases (so the newer replaces the older). */
function sameReleases(a: BadRevision, b: BadRevision): boolean {
  const key = (entry: BadRevision) => JSON.stringify((entry.releases ?? []).map(({ app, sha }) => `${app}@${sha}`).sort());
  return key(a) === key(b);
}

/** True while a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A hard link from `source` to `path`; false when it cannot be made (the caller writes a copy instead). */
function linked(source: string, path: string): boolean {
  try {
    linkSync(source, path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes a directory tree with `rm -rf` (one process unlinks thousands of a generation's files for a fraction of
 * what as many asynchronous calls cost), or with Node's own `rm` where there is no `rm`.
 */
async function removeTree(path: string): Promise<void> {
  await promisify(execFile)('rm', ['-rf', '--', path]).catch(() => rm(path, { recursive: true, force: true }));
}

/** Hidden names under generations/: a generation being written, and one being pruned. */
const GENERATION_TEMP_PREFIX = '.';
const PRUNED_PREFIX = '.pruned-';

/** A file of the state dir that cannot be used as it is: names the file, the damage and the way out. */
export function stateDamaged(path: string, damage: string, fix: string, cause?: unknown): EdgeError {
  return new EdgeError('STATE_DAMAGED', `${path} is damaged: ${damage}; ${fix}`, { stage: 'fetch', retry: 'stuck', cause });
}

/** temp + fsync + rename + fsync of the directory. */
export async function writeFileAtomic(path: string, content: string | Buffer, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await syncDir(dirname(path));
}

/** What identifies one version of a file replaced by rename: inode, size, ctime; undefined when it is not there. */
function fileStamp(path: string): string | undefined {
  try {
    const info = statSync(path, { bigint: true, throwIfNoEntry: false });
    return info ? `${info.ino}:${info.size}:${info.ctimeNs}` : undefined;
  } catch {
    return undefined;
  }
}

/** Freezes a parsed JSON value all the way down: a meta handed out twice must not be changed by one reader. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    // An index loop and for-in: no array of values per object (an inventory is thousands of them).
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
    } else {
      for (const key in value) if (Object.hasOwn(value, key)) deepFreeze((value as Record<string, unknown>)[key]);
    }
  }
  return value;
}
