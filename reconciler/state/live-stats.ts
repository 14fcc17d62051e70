/**
 * The no-op path reads only what it must: a managed file whose `lstat` (device, inode, size, mtime and ctime in
 * nanoseconds, mode, owner) is what it was when its content last matched the inventory is taken as unchanged
 * without being read or hashed. Any write, chmod, chown, rename or replacement changes ctime, so only files whose
 * stat changed are read and hashed again. A stat is recorded only when it held still while the file was read and
 * is older than RACY_NS (git's "racily clean" rule: a write within the filesystem's timestamp granularity could
 * otherwise hide behind an equal stat). The records live in the cache dir (a pack: each entry checked by hash).
 */
import { lstatSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { CachePack } from '../cache/pack.js';
import type { Host } from '../host/host.js';
import { compareWithInventory } from './drift.js';
import type { InventoryEntry } from './inventory.js';
import { inLanes } from '../lanes.js';

/** A stat younger than this (ns, ten times the coarsest kernel clock tick) is not recorded: a write in the same tick could leave it equal. */
export const RACY_NS = 100_000_000n;

/** The inventory fields a stat record vouches for. */
export type StatEntry = Pick<InventoryEntry, 'path' | 'sha256' | 'mode' | 'owner' | 'group' | 'link'>;

function statText(stat: BigIntStats): string {
  return [stat.dev, stat.ino, stat.size, stat.mtimeNs, stat.ctimeNs, stat.mode, stat.uid, stat.gid].join(':');
}

/** The recorded stats of a host's managed files. */
export class LiveStats {
  private readonly dirs = new Map<string, boolean>();
  private readonly root: string;

  private constructor(
    private readonly pack: CachePack,
    private readonly host: Host,
  ) {
    this.root = resolve(host.root);
  }

  /** Opens the records in `cacheDir` for `host`; without a cache dir, records live in memory only. */
  static async open(host: Host, cacheDir: string | undefined): Promise<LiveStats> {
    return new LiveStats(cacheDir ? await CachePack.open(cacheDir, 'live-stats') : CachePack.inMemory(), host);
  }

  /** True when `entry`'s file is, by its stat alone, exactly as it was when it last matched (no read, no hash). */
  async unchanged(entry: StatEntry): Promise<boolean> {
    // A record is `<sha256> <stat>`: what the content was, and the stat that vouches for it.
    const record = this.pack.get<string>(this.key(entry.path));
    if (typeof record !== 'string' || !record.startsWith(`${entry.sha256} `)) return false;
    const stat = await this.stat(entry.path);
    if (!stat || record.slice(entry.sha256.length + 1) !== statText(stat)) return false;
    // A managed link (an app's `current`): the same link (a replaced one has another inode and ctime), and the
    // release dir it names still there: one stat through it.
    if (entry.link) return stat.isSymbolicLink() && this.releasePresent(entry.path);
    return stat.isFile() && this.ownedAsListed(stat, entry);
  }

  /**
   * Whether any file differs from its entry: the stat first, the content only where the stat changed (then the new
   * stat is recorded when the content matched). Up to `width` files at once; the first difference ends the search.
   */
  async anyDrift(entries: readonly InventoryEntry[], width = 16): Promise<boolean> {
    return inLanes(entries, width, async (entry) => {
      if (await this.unchanged(entry)) return;
      if (!(await this.verify(entry))) return 'stop';
    });
  }

  /** Compares the file's content with `entry` (drift.ts); on a match, records its stat for next time. */
  async verify(entry: InventoryEntry): Promise<boolean> {
    const before = await this.stat(entry.path);
    if (await compareWithInventory(this.host, entry)) return false;
    const after = await this.stat(entry.path);
    const now = BigInt(Date.now()) * 1_000_000n;
    const kindAsListed = entry.link ? after?.isSymbolicLink() : after?.isFile();
    if (before && after && kindAsListed && statText(before) === statText(after) && now - after.ctimeNs > RACY_NS) {
      this.pack.put(this.key(entry.path), `${entry.sha256} ${statText(after)}`);
    }
    return true;
  }

  /** Keeps the records for the next run (records not looked at in this run are dropped). */
  async save(): Promise<void> {
    await this.pack.save();
  }

  /** Whether a directory is where the link at `path` points (its parents were checked by `stat`). */
  private releasePresent(path: string): boolean {
    try {
      return statSync(this.host.resolve(path), { throwIfNoEntry: false })?.isDirectory() === true;
    } catch {
      return false;
    }
  }

  /** The root is part of the key: a state dir moved to another root never vouches for its files. */
  private key(path: string): string {
    return `${this.root}\0${path}`;
  }

  private ownedAsListed(stat: BigIntStats, entry: StatEntry): boolean {
    if (Number(stat.mode & 0o7777n) !== entry.mode) return false;
    const uid = this.host.ids.uid(entry.owner);
    const gid = this.host.ids.gid(entry.group);
    return (uid === undefined || BigInt(uid) === stat.uid) && (gid === undefined || BigInt(gid) === stat.gid);
  }

  /**
   * Whether `dir` (a host path) and every directory above it up to the root is a directory, not a symlink: one
   * `lstat` per directory per run (an app's `current` sits in a directory of its own, a hundred apps a hundred dirs).
   */
  private realDir(dir: string): boolean {
    if (dir === '/' || dir === '.') return true;
    let ok = this.dirs.get(dir);
    if (ok === undefined) {
      ok = this.realDir(dirname(dir)) && isPlainDir(join(this.host.root, dir));
      this.dirs.set(dir, ok);
    }
    return ok;
  }

  /** The file's stat when every directory above it is the real one (no symlink on the way); else undefined. */
  private async stat(path: string): Promise<BigIntStats | undefined> {
    let real: string;
    try {
      real = this.host.resolve(path);
    } catch {
      return undefined;
    }
    if (!this.realDir(dirname(path))) return undefined;
    // Synchronous: one lstat is cheaper than a trip through the thread pool, and thousands of them are the no-op.
    try {
      return lstatSync(real, { bigint: true, throwIfNoEntry: false });
    } catch {
      return undefined;
    }
  }
}

/** True when `path` is a directory itself (`lstat`: a symlink to one is not). */
function isPlainDir(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}
