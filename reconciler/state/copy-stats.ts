/**
 * A generation carries the stored copies of its unchanged files forward as hard links to the previous one's, each
 * only while it still matches its hash, so a damaged copy is written afresh instead of spreading. Reading and
 * hashing every copy at every generation costs what the whole host costs (3000 reads for one change at 1000 apps);
 * so, as for the live files (live-stats.ts), a copy whose device, inode, size and mtime are what they were when it
 * last matched is taken as matching without being read. ctime is not part of it: every hard link changes it. Any
 * write changes mtime, and a copy replaced by another file has another inode. A stat is recorded only when it held
 * still while the copy was read and is older than RACY_NS. Records are keyed by inode, which the links share, and
 * live in the cache dir (a pack: checked by hash; records not looked at in a run are dropped).
 */
import { lstatSync, readFileSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { CachePack } from '../cache/pack.js';
import { sha256 } from './inventory.js';
import { RACY_NS } from './live-stats.js';

function statOf(path: string): BigIntStats | undefined {
  try {
    const stat = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    return stat?.isFile() ? stat : undefined;
  } catch {
    return undefined;
  }
}

/** What a record vouches for: this content in this file, unchanged since. */
function vouch(hash: string, stat: BigIntStats): string {
  return `${hash} ${stat.size}:${stat.mtimeNs}`;
}

/** The recorded stats of the stored copies of a state dir's generations. */
export class CopyStats {
  private constructor(private readonly pack: CachePack) {}

  /** Opens the records in `cacheDir`; without one, records live in memory only. */
  static async open(cacheDir: string | undefined): Promise<CopyStats> {
    return cacheDir ? new CopyStats(await CachePack.open(cacheDir, 'copy-stats')) : CopyStats.inMemory();
  }

  /** Records for this process only: every copy is read and hashed the first time it is asked for. */
  static inMemory(): CopyStats {
    return new CopyStats(CachePack.inMemory());
  }

  /** True when the stored copy at `path` holds content with sha256 `hash`: by its stat when recorded, else read. */
  intact(path: string, hash: string): boolean {
    const before = statOf(path);
    if (!before) return false;
    const key = `${before.dev}:${before.ino}`;
    if (this.pack.get<string>(key) === vouch(hash, before)) return true;
    let content: Buffer;
    try {
      content = readFileSync(path);
    } catch {
      return false;
    }
    if (sha256(content) !== hash) return false;
    const after = statOf(path);
    const now = BigInt(Date.now()) * 1_000_000n;
    if (after && after.ino === before.ino && vouch(hash, after) === vouch(hash, before) && now - after.mtimeNs > RACY_NS) this.pack.put(key, vouch(hash, after));
    return true;
  }

  /** Keeps the records for the next generation. */
  async save(): Promise<void> {
    await this.pack.save();
  }
}
