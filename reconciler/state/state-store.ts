/**
 * The agent's own state dir (default /var/lib/edge-reconciler): generations with the content of every managed
 * file, the journal of the transaction in flight, the status document, bad revisions, the pin and the lock.
 * Every write is temp + fsync + rename (+ fsync of the directory); the dir is private (0700): generations hold
 * rendered env files, which hold secrets.
 */
import { link, mkdir, open, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { syncDir } from '../host/host.js';
import { sha256, type InventoryEntry, type ManagedFile } from './inventory.js';
import { acquireLock, type Unlock } from './lock.js';
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

  /** Reads JSON, or undefined when the file does not exist. */
  async readJson<T>(path: string): Promise<T | undefined> {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  /** Generation numbers, ascending. */
  async generations(): Promise<number[]> {
    const entries = await readdir(this.generationsDir).catch(() => [] as string[]);
    return entries.filter((name) => /^\d+$/.test(name)).map(Number).sort((a, b) => a - b);
  }

  /** The meta of generation `n`. */
  async readGeneration(n: number): Promise<GenerationMeta> {
    const meta = await this.readJson<GenerationMeta>(join(this.generationsDir, String(n), 'meta.json'));
    if (!meta) throw new Error(`generation ${n} has no meta.json`);
    return meta;
  }

  /** Every generation's meta, newest first. */
  async history(): Promise<GenerationMeta[]> {
    const numbers = await this.generations();
    return Promise.all(numbers.reverse().map((n) => this.readGeneration(n)));
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
   * Stores a new generation: the content of every file and its meta, written into a temp dir that is renamed
   * into place, so a generation dir is either complete or absent.
   */
  async createGeneration(
    meta: Omit<GenerationMeta, 'generation'>,
    files: readonly ManagedFile[],
    reuse?: GenerationMeta,
  ): Promise<GenerationMeta> {
    const numbers = await this.generations();
    const generation = (numbers.at(-1) ?? 0) + 1;
    const full: GenerationMeta = { ...meta, generation };
    const temp = join(this.generationsDir, `.${generation}.${randomBytes(4).toString('hex')}`);
    await mkdir(join(temp, 'files'), { recursive: true, mode: 0o700 });
    // Files unchanged since `reuse` are hard links to its copies: a one-file change stores one file.
    const unchanged = new Map((reuse?.inventory ?? []).map((entry) => [entry.path, entry.sha256]));
    const dirs = new Set<string>();
    for (const file of files) {
      const path = join(temp, 'files', file.path);
      if (!dirs.has(dirname(path))) {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        dirs.add(dirname(path));
      }
      if (reuse && unchanged.get(file.path) === sha256(file.content)) {
        const linked = await link(join(this.generationsDir, String(reuse.generation), 'files', file.path), path).then(
          () => true,
          () => false,
        );
        if (linked) continue;
      }
      await writeFile(path, file.content, { mode: 0o600 });
    }
    await writeFileAtomic(join(temp, 'meta.json'), `${JSON.stringify(full, null, 2)}\n`);
    await rename(temp, join(this.generationsDir, String(generation)));
    await syncDir(this.generationsDir);
    return full;
  }

  /** Updates the result of a generation. */
  async setResult(n: number, result: GenerationResult, reason?: string): Promise<void> {
    const meta = await this.readGeneration(n);
    await this.writeJson(join(this.generationsDir, String(n), 'meta.json'), { ...meta, result, ...(reason ? { reason } : {}) });
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

  /** Keeps the newest `keep` generations, and always the newest good one. */
  async prune(keep: number): Promise<void> {
    const numbers = await this.generations();
    const good = (await this.lastGood())?.generation;
    for (const n of numbers.slice(0, Math.max(0, numbers.length - keep))) {
      if (n !== good) await rm(join(this.generationsDir, String(n)), { recursive: true, force: true });
    }
  }

  /** Revisions marked bad. */
  async badRevisions(): Promise<BadRevision[]> {
    return (await this.readJson<BadRevision[]>(join(this.dir, 'bad-revisions.json'))) ?? [];
  }

  /** Marks a revision bad (kept to the newest 50). */
  async markBad(entry: BadRevision): Promise<void> {
    const list = (await this.badRevisions()).filter((bad) => bad.revision !== entry.revision);
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

/** True while a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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
