/**
 * A content-addressed cache pack: one file per namespace in the cache dir (`<stateDir>/cache/<namespace>.json`;
 * JSON lines: the sha256 of the rest, a header, then one `key<TAB>value` line per entry),
 * entries keyed by a hash of what decided them (git blob or content hashes, the engine version, ...). The pack
 * carries the sha256 of its text and is checked on read: a damaged or edited pack is not used, the work is done
 * again (and the pack rewritten). A pack that cannot be read is an empty pack. Written temp + rename, mode 0600 in a
 * 0700 dir (rendered env files hold secrets, as generations do).
 */
import * as crypto from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ENGINE_VERSION } from '../version.js';

/**
 * A pack is rewritten once this share of its entries changed (added, replaced or dropped). Below it, the few
 * entries a run added are cheaper to make again in the next run than the pack is to rewrite: one change at 1000
 * apps adds two or three entries to packs of megabytes.
 */
export const REWRITE_SHARE = 0.01;

/** The pack format; a pack of another format is ignored. */
const PACK_FORMAT = 3;

/** The first line of a pack's body (after the sha256 line). */
interface PackHeader {
  format: number;
  engine: string;
}

/** How a pack was used in this process: for the log and the tests. */
export interface PackCounters {
  hits: number;
  misses: number;
  /** Packs whose text did not match their hash (or did not parse): ignored whole. */
  corrupt: number;
}

/** Node's one-shot hash (20.12 and later): two to three times cheaper than a Hash object for the short texts here. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Buffer, encoding: 'hex') => string }).hash;

/** The sha256 of a text, hex. A run hashes ~15 000 keys and texts at 1000 apps: the one-shot call where there is one. */
export function digestOf(text: string | Buffer): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex');
}

/** A cache key: the hash of the engine version, the namespace and the parts that decide the entry. */
export function cacheKey(namespace: string, ...parts: readonly string[]): string {
  return digestOf([ENGINE_VERSION, namespace, ...parts].join('\0'));
}

/**
 * One namespace's entries, in memory. The file is `<sha256 of the body>\n<body>`: the hash is checked once when
 * the pack is read (one hash for thousands of entries), and a pack that does not match is not used at all.
 * `save()` writes the entries this process used or added.
 */
export class CachePack {
  readonly counters: PackCounters = { hits: 0, misses: 0, corrupt: 0 };
  private readonly used = new Map<string, string>();
  /** Entries added or replaced since the pack was read. */
  private changed = 0;

  private constructor(
    /** The pack file, or undefined for a pack that lives in memory only. */
    readonly file: string | undefined,
    private readonly stored: Record<string, string>,
    corrupt: boolean,
  ) {
    if (corrupt) this.counters.corrupt++;
  }

  /** A pack that is never written (tests, or a command without a state dir). */
  static inMemory(): CachePack {
    return new CachePack(undefined, {}, false);
  }

  /** Reads `<dir>/<namespace>.json`; missing, damaged or of another engine: an empty pack. */
  static async open(dir: string, namespace: string): Promise<CachePack> {
    const file = join(dir, `${namespace}.json`);
    // Bytes first: the hash is checked on them, not on a string converted back to UTF-8 (megabytes at 1000 apps).
    const data = await readFile(file).catch(() => undefined);
    if (data === undefined) return new CachePack(file, {}, false);
    const newline = data.indexOf(0x0a);
    if (newline !== 64 || digestOf(data.subarray(newline + 1)) !== data.toString('latin1', 0, newline)) return new CachePack(file, {}, true);
    const body = data.toString('utf8', newline + 1);
    // The body: a header line, then one `key<TAB>value JSON` line per entry (JSON text never holds a raw newline).
    const lines = body.split('\n');
    let header: Partial<PackHeader>;
    try {
      header = JSON.parse(lines[0] ?? '') as Partial<PackHeader>;
    } catch {
      return new CachePack(file, {}, true);
    }
    if (header.format !== PACK_FORMAT || header.engine !== ENGINE_VERSION) return new CachePack(file, {}, false);
    const entries: Record<string, string> = {};
    for (let index = 1; index < lines.length; index++) {
      const line = lines[index] as string;
      const tab = line.indexOf('\t');
      if (tab > 0) entries[line.slice(0, tab)] = line.slice(tab + 1);
    }
    return new CachePack(file, entries, false);
  }

  /** A fresh copy of the value stored under `key`; undefined when absent. */
  get<T>(key: string): T | undefined {
    const text = this.used.get(key) ?? this.stored[key];
    if (typeof text !== 'string') {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    if (!this.used.has(key)) this.used.set(key, text);
    return JSON.parse(text) as T;
  }

  /** Stores `value` (JSON) under `key`; a key with a tab or a newline (a line of the pack) is not stored. */
  put(key: string, value: unknown): void {
    if (/[\t\n]/.test(key)) return;
    const text = JSON.stringify(value);
    if ((this.used.get(key) ?? this.stored[key]) !== text) this.changed++;
    this.used.set(key, text);
  }

  /**
   * Writes the entries used or added since the pack was opened (the others are dropped: a pack only holds what the
   * last run needed), once they differ from what is stored by REWRITE_SHARE of it or more. Errors are the caller's
   * to log: a cache that cannot be written only costs time.
   */
  async save(): Promise<void> {
    if (!this.file) return;
    const storedKeys = Object.keys(this.stored);
    let dropped = 0;
    for (const key of storedKeys) if (!this.used.has(key)) dropped++;
    const changes = this.changed + dropped;
    if (changes === 0 || changes < storedKeys.length * REWRITE_SHARE) return;
    const header = JSON.stringify({ format: PACK_FORMAT, engine: ENGINE_VERSION } satisfies PackHeader);
    const body = Buffer.from([header, ...[...this.used].map(([key, value]) => `${key}\t${value}`)].join('\n'));
    const dir = join(this.file, '..');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.file}.tmp-${crypto.randomBytes(4).toString('hex')}`;
    try {
      await writeFile(temp, Buffer.concat([Buffer.from(`${digestOf(body)}\n`), body]), { mode: 0o600 });
      await rename(temp, this.file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    this.changed = 0;
  }
}
