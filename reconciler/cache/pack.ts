/**
 * A content-addressed cache pack: one file per namespace in the cache dir (`<stateDir>/cache/<namespace>.json`),
 * entries keyed by a hash of what decided them (git blob or content hashes, the engine version, ...). Every entry
 * carries the sha256 of its own text and is checked on read: a damaged or edited entry is dropped and the work is
 * done again, never used. A whole pack that cannot be read is an empty pack. Written temp + rename, mode 0600 in a
 * 0700 dir (rendered env files hold secrets, as generations do).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ENGINE_VERSION } from '../version.js';

/** The pack format; a pack of another format is ignored. */
const PACK_FORMAT = 1;

/** One stored entry: the sha256 of `json`, and the value as JSON text. */
interface StoredEntry {
  d: string;
  j: string;
}

interface PackFile {
  format: number;
  engine: string;
  entries: Record<string, StoredEntry>;
}

/** How a pack was used in this process: for the log and the tests. */
export interface PackCounters {
  hits: number;
  misses: number;
  /** Entries whose text did not match their hash: dropped. */
  corrupt: number;
}

/** The sha256 of a text, hex. */
export function digestOf(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A cache key: the hash of the engine version, the namespace and the parts that decide the entry. */
export function cacheKey(namespace: string, ...parts: readonly string[]): string {
  return digestOf([ENGINE_VERSION, namespace, ...parts].join('\0'));
}

/** One namespace's entries, in memory; `save()` writes the entries this process used or added. */
export class CachePack {
  readonly counters: PackCounters = { hits: 0, misses: 0, corrupt: 0 };
  private readonly used = new Map<string, StoredEntry>();
  private dirty = false;

  private constructor(
    /** The pack file, or undefined for a pack that lives in memory only. */
    readonly file: string | undefined,
    private readonly stored: Record<string, StoredEntry>,
  ) {}

  /** A pack that is never written (tests, or a command without a state dir). */
  static inMemory(): CachePack {
    return new CachePack(undefined, {});
  }

  /** Reads `<dir>/<namespace>.json`; missing, unreadable or of another engine: an empty pack. */
  static async open(dir: string, namespace: string): Promise<CachePack> {
    const file = join(dir, `${namespace}.json`);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    let entries: Record<string, StoredEntry> = {};
    if (text !== undefined) {
      try {
        const parsed = JSON.parse(text) as Partial<PackFile>;
        if (parsed.format === PACK_FORMAT && parsed.engine === ENGINE_VERSION && parsed.entries && typeof parsed.entries === 'object') {
          entries = parsed.entries;
        }
      } catch {
        // A torn or edited pack is an empty one: the work is done again.
      }
    }
    return new CachePack(file, entries);
  }

  /** The value stored under `key`, after checking it against its hash; undefined when absent or damaged. */
  get<T>(key: string): T | undefined {
    const entry = this.used.get(key) ?? this.stored[key];
    if (!entry || typeof entry.j !== 'string' || typeof entry.d !== 'string') {
      this.counters.misses++;
      return undefined;
    }
    if (digestOf(entry.j) !== entry.d) {
      this.counters.corrupt++;
      this.counters.misses++;
      delete this.stored[key];
      this.used.delete(key);
      this.dirty = true;
      return undefined;
    }
    let value: T;
    try {
      value = JSON.parse(entry.j) as T;
    } catch {
      this.counters.corrupt++;
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    if (!this.used.has(key)) this.used.set(key, entry);
    return value;
  }

  /** Stores `value` (JSON) under `key`. */
  put(key: string, value: unknown): void {
    const j = JSON.stringify(value);
    this.used.set(key, { d: digestOf(j), j });
    this.dirty = true;
  }

  /**
   * Writes the entries used or added since the pack was opened (the others are dropped: a pack only holds what the
   * last run needed). Nothing is written when nothing changed. Errors are the caller's to log: a cache that cannot
   * be written only costs time.
   */
  async save(): Promise<void> {
    if (!this.file) return;
    const unusedDropped = Object.keys(this.stored).some((key) => !this.used.has(key));
    if (!this.dirty && !unusedDropped) return;
    const body: PackFile = { format: PACK_FORMAT, engine: ENGINE_VERSION, entries: Object.fromEntries(this.used) };
    const dir = join(this.file, '..');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.file}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(temp, JSON.stringify(body), { mode: 0o600 });
      await rename(temp, this.file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    this.dirty = false;
  }
}
