/**
 * Drift: how a managed file on the host differs from what the live generation's inventory says it should be.
 * The drift watcher and the fast no-op path both ask this one question.
 */
import { stat } from 'node:fs/promises';
import { HostPathError, type Host } from '../host/host.js';
import { sha256, type InventoryEntry } from './inventory.js';
import { inLanes } from '../lanes.js';

/** How a managed file differs from the live generation's inventory. */
export type DriftKind = 'modified' | 'removed' | 'mode' | 'owner';

/**
 * How a managed file differs from its inventory entry, or undefined when it matches. Read through the host adapter,
 * so never through a symlinked directory: a way out of the root counts as a modified file (apply then refuses it).
 */
export async function compareWithInventory(host: Host, entry: InventoryEntry): Promise<{ kind: DriftKind; state: string } | undefined> {
  let live;
  try {
    live = await host.read(entry.path);
  } catch (error) {
    if (error instanceof HostPathError) return { kind: 'modified', state: `${error.code}: ${error.message}` };
    throw error;
  }
  if (!live) return { kind: 'removed', state: 'removed' };
  if (entry.link) return compareLink(host, entry, live.type, live.content);
  if (live.type !== 'file') return { kind: 'modified', state: `a ${live.type}` };
  const uid = host.ids.uid(entry.owner);
  const gid = host.ids.gid(entry.group);
  const hash = sha256(live.content);
  const state = `${hash} ${live.mode.toString(8)} ${live.uid}:${live.gid}`;
  if (hash !== entry.sha256) return { kind: 'modified', state };
  if (live.mode !== entry.mode) return { kind: 'mode', state };
  if ((uid !== undefined && uid !== live.uid) || (gid !== undefined && gid !== live.gid)) return { kind: 'owner', state };
  return undefined;
}

/** A managed symlink (an app's `current`) differs when it is no link, points elsewhere, or at nothing. */
async function compareLink(host: Host, entry: InventoryEntry, type: string, target: Buffer): Promise<{ kind: DriftKind; state: string } | undefined> {
  if (type !== 'symlink') return { kind: 'modified', state: `a ${type}` };
  if (sha256(target) !== entry.sha256) return { kind: 'modified', state: `a link to ${target.toString()}` };
  // The release it names must still be there: a removed release dir is drift that the next apply rebuilds. One
  // stat through the link (its parents were just checked): it only asks whether a directory is there.
  const present = await stat(host.resolve(entry.path)).then((found) => found.isDirectory(), () => false);
  return present ? undefined : { kind: 'modified', state: `a link to a missing ${target.toString()}` };
}

/**
 * Whether any managed file differs from its inventory entry. Up to `width` files are read at once (the no-op of a
 * live revision is mostly this: hundreds of small reads that gain from overlapping), and the first difference ends
 * the search.
 */
export async function anyDrift(host: Host, entries: readonly InventoryEntry[], width = 16): Promise<boolean> {
  return inLanes(entries, width, async (entry) => ((await compareWithInventory(host, entry)) ? 'stop' : undefined));
}
