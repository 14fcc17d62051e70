/**
 * Watch triggers: the managed files of the live generation (a hand edit, chmod, chown or deletion is drift) and
 * the secrets dir (a rotated secret re-renders the env files that use it). Both use chokidar on inotify, no
 * polling. They only decide when something changed and report what; the daemon turns that into a reconcile.
 * Events only wake the watcher up: what counts is a comparison of the live file with the inventory after a
 * debounce, so the agent's own writes, an editor saving identical bytes or a touch are never drift.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, normalize } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { TEMP_PREFIX, type Host } from '../host/host.js';
import { sha256, type InventoryEntry } from '../state/inventory.js';
import { compareWithInventory, type DriftKind } from '../state/drift.js';

/** One drifted managed file (`path` is the host path, as in the inventory). */
export interface Drift {
  path: string;
  kind: DriftKind;
}

/** The logger the watchers report to (pino's shape). */
export interface WatchLog {
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** Options of the managed-files watcher. */
export interface WatchManagedFilesOptions {
  /** Resolves host paths under the root, and owner names to ids (as the plan does). */
  host: Host;
  /** The live generation's inventory; read when watching starts, on refresh() and at every check. */
  inventory: () => readonly InventoryEntry[];
  /** True while the agent itself writes managed files: events then are held, not reported. */
  isApplying: () => boolean;
  /** Called with the drifted files (sorted by path), at most once per debounce window. */
  onDrift: (drift: Drift[]) => void;
  /** Quiet time after the last event before files are compared (default 1000 ms). */
  debounceMs?: number;
  log: WatchLog;
}

/** A running managed-files watcher. */
export interface DriftWatcher {
  /** Stops watching; no callback runs after the promise resolves. */
  close(): Promise<void>;
  /**
   * Call after every reconcile that may have written files: re-reads inventory(), watches new files, drops
   * removed ones, and verifies the files that changed while the agent was applying.
   */
  refresh(): Promise<void>;
}

/** Options of the secrets-dir watcher. */
export interface WatchSecretsOptions {
  dir: string;
  /** Called with the names (file names) of the secrets added, changed or removed, sorted. */
  onChange: (names: string[]) => void;
  /** Quiet time after the last event before the dir is compared (default 1000 ms). */
  debounceMs?: number;
  /** Where a failing callback or watcher error is reported (names only, never values). */
  log?: WatchLog;
}

/** A running secrets-dir watcher. */
export interface SecretsWatcher {
  close(): Promise<void>;
}

const DEFAULT_DEBOUNCE_MS = 1000;

/** Never wait longer than this many debounce periods when events keep coming. */
const MAX_WAIT_FACTOR = 10;

/** What chokidar is told for every watcher: inotify only, and no stat polling for write completion. */
const BASE_OPTIONS = { ignoreInitial: true, usePolling: false, atomic: true, awaitWriteFinish: false, depth: 0 } as const;

/**
 * Watches the managed files of the live generation (each file and its parent dir, so rename-over, deletion and
 * re-creation are seen) and reports drift. Resolves once the watches are in place.
 */
export async function watchManagedFiles(options: WatchManagedFilesOptions): Promise<DriftWatcher> {
  const { host, log } = options;
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  /** Resolved (real) path → host path, for the files watched now. */
  let managed = new Map<string, string>();
  let dirs = new Set<string>();
  let watcher: FSWatcher | undefined;
  let closed = false;
  const dirty = new Set<string>();
  /** Files that changed while the agent was applying: verified once it is done. */
  const held = new Set<string>();
  /** What was last reported per path, so the same drifted state is reported once. */
  const reported = new Map<string, string>();

  const check = async (paths: string[]): Promise<void> => {
    const entries = new Map(options.inventory().map((entry) => [entry.path, entry]));
    const drift: Drift[] = [];
    for (const path of paths.sort()) {
      const entry = entries.get(path);
      if (!entry) continue;
      const found = await compareWithInventory(host, entry);
      if (!found) {
        reported.delete(path);
        continue;
      }
      if (reported.get(path) === found.state) continue;
      reported.set(path, found.state);
      drift.push({ path, kind: found.kind });
    }
    if (closed || drift.length === 0) return;
    log.warn({ drift }, `managed files drifted from the live generation: ${drift.map((item) => `${item.path} (${item.kind})`).join(', ')}`);
    try {
      options.onDrift(drift);
    } catch (error) {
      log.error({ err: errorMessage(error) }, `drift callback failed: ${errorMessage(error)}`);
    }
  };

  const debouncer = new Debouncer(debounceMs, async () => {
    const paths = [...dirty];
    dirty.clear();
    if (options.isApplying()) {
      for (const path of paths) held.add(path);
      return;
    }
    await check([...paths, ...takeAll(held)]);
  }, (error) => log.error({ err: errorMessage(error) }, `drift check failed: ${errorMessage(error)}`));

  const touched = (real: string): void => {
    if (closed) return;
    const path = managed.get(normalize(real));
    if (!path) return;
    if (options.isApplying()) held.add(path);
    else {
      dirty.add(path);
      debouncer.schedule();
    }
  };

  /** The inventory the watches were built for; refresh() rebuilds them only when it changes. */
  let builtFor = '';
  /** A watched file or dir went away: chokidar keeps a dead inotify watch for a dir, so the next refresh rebuilds. */
  let stale = false;

  const start = async (): Promise<void> => {
    const entries = options.inventory();
    builtFor = signature(entries);
    stale = false;
    managed = new Map(entries.map((entry) => [normalize(host.resolve(entry.path)), entry.path]));
    dirs = new Set([...managed.keys()].map((real) => dirname(real)));
    if (dirs.size === 0) return;
    const next = watch([...dirs], {
      ...BASE_OPTIONS,
      // Only the managed files and their dirs get a watch; everything else in those dirs is left alone.
      ignored: (path: string) => !(managed.has(path) || dirs.has(path)) || basename(path).startsWith(TEMP_PREFIX),
    });
    next.on('all', (event, path) => {
      if (event === 'unlink' || event === 'unlinkDir') stale = true;
      touched(path);
    });
    // chokidar drops attribute-only changes (chmod, chown) when mtime is unchanged; the raw inotify event has them.
    next.on('raw', (_event, name, details) => {
      const watched = (details as { watchedPath?: string }).watchedPath;
      if (!watched) return;
      touched(dirs.has(normalize(watched)) && name ? join(watched, name) : watched);
    });
    next.on('error', (error) => {
      stale = true;
      log.error({ err: errorMessage(error) }, `drift watcher: ${errorMessage(error)}`);
    });
    await ready(next);
    if (closed) await next.close();
    else watcher = next;
  };

  await start();
  return {
    async close() {
      closed = true;
      await debouncer.close();
      await watcher?.close();
    },
    async refresh() {
      if (closed) return;
      if (stale || signature(options.inventory()) !== builtFor) {
        // A fresh watcher rather than add/unwatch: a managed dir that was deleted and re-created needs a new
        // inotify watch, and chokidar would keep the dead one.
        await watcher?.close();
        watcher = undefined;
        reported.clear();
        await start();
      }
      await debouncer.run(async () => {
        if (options.isApplying()) return;
        await check(takeAll(held));
      });
    },
  };
}

/**
 * Watches a secrets dir (one file per secret, as readSecretsDir reads it: regular files, no dotfiles) and
 * reports the names of the secrets whose content or mode changed. Values are hashed to tell a touch from a
 * change, never kept or logged. Resolves once the dir is snapshotted and watched.
 */
export async function watchSecrets(options: WatchSecretsOptions): Promise<SecretsWatcher> {
  const dir = normalize(options.dir);
  const snapshot = new Map<string, string>();
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') throw new Error(`secrets dir ${dir} does not exist; cannot watch it`);
    throw error;
  });
  for (const name of entries) {
    if (!isSecretName(name)) continue;
    const print = await secretFingerprint(join(dir, name));
    if (print) snapshot.set(name, print);
  }
  let closed = false;
  const pending = new Set<string>();
  const debouncer = new Debouncer(options.debounceMs ?? DEFAULT_DEBOUNCE_MS, async () => {
    const changed: string[] = [];
    for (const name of [...takeAll(pending)].sort()) {
      const print = await secretFingerprint(join(dir, name));
      if (print === snapshot.get(name)) continue;
      if (print) snapshot.set(name, print);
      else snapshot.delete(name);
      changed.push(name);
    }
    if (closed || changed.length === 0) return;
    try {
      options.onChange(changed);
    } catch (error) {
      options.log?.error({ secrets: changed, err: errorMessage(error) }, `secrets callback failed: ${errorMessage(error)}`);
    }
  }, (error) => options.log?.error({ err: errorMessage(error) }, `secrets check of ${dir} failed: ${errorMessage(error)}`));
  const touched = (path: string): void => {
    if (closed || dirname(normalize(path)) !== dir) return;
    const name = basename(path);
    if (!isSecretName(name)) return;
    pending.add(name);
    debouncer.schedule();
  };
  const watcher = watch(dir, {
    ...BASE_OPTIONS,
    ignored: (path: string) => path !== dir && (dirname(path) !== dir || !isSecretName(basename(path))),
  });
  watcher.on('all', (_event, path) => touched(path));
  watcher.on('raw', (_event, name, details) => {
    const watched = (details as { watchedPath?: string }).watchedPath;
    if (!watched) return;
    touched(normalize(watched) === dir && name ? join(dir, name) : watched);
  });
  watcher.on('error', (error) => options.log?.error({ err: errorMessage(error) }, `secrets watcher on ${dir}: ${errorMessage(error)}`));
  await ready(watcher);
  return {
    async close() {
      closed = true;
      await debouncer.close();
      await watcher.close();
    },
  };
}

/** Secrets are regular files with names readSecretsDir accepts (no dotfiles: editors' swap files, temp files). */
function isSecretName(name: string): boolean {
  return name.length > 0 && !name.startsWith('.');
}

/** sha256 of the content and the mode of a secret file; undefined when it is gone or not a regular file. */
async function secretFingerprint(path: string): Promise<string | undefined> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat?.isFile()) return undefined;
  const content = await readFile(path).catch(() => undefined);
  return content ? `${sha256(content)} ${(stat.mode & 0o7777).toString(8)}` : undefined;
}

/**
 * Trailing-edge debounce of an async job: runs `job` once events have been quiet for `waitMs` (or `waitMs` ×
 * MAX_WAIT_FACTOR after the first of a steady stream), never two runs at once.
 */
class Debouncer {
  private timer: NodeJS.Timeout | undefined;
  private firstAt = 0;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly waitMs: number,
    private readonly job: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Notes an event: (re)arms the timer. */
  schedule(): void {
    if (this.closed) return;
    const now = Date.now();
    if (!this.timer) this.firstAt = now;
    else clearTimeout(this.timer);
    const delay = Math.max(0, Math.min(this.waitMs, this.firstAt + this.waitMs * MAX_WAIT_FACTOR - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run(this.job);
    }, delay);
  }

  /** Runs `job` after whatever runs now; a failure goes to onError and does not stop later runs. */
  run(job: () => Promise<void>): Promise<void> {
    const next = this.chain.then(() => (this.closed ? undefined : job())).catch((error: unknown) => this.onError(error));
    this.chain = next;
    return next;
  }

  /** Cancels the timer and waits for a running job. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
  }
}

/** What the watches and the reports depend on: every entry's path and expected state. */
function signature(entries: readonly InventoryEntry[]): string {
  return entries.map((entry) => `${entry.path} ${entry.sha256} ${entry.mode} ${entry.owner}:${entry.group}`).sort().join('\n');
}

function takeAll<T>(set: Set<T>): T[] {
  const items = [...set];
  set.clear();
  return items;
}

function ready(watcher: FSWatcher): Promise<void> {
  return new Promise((resolve) => watcher.once('ready', () => resolve()));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
