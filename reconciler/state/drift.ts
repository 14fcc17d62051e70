/**
 * Drift: how a managed file on the host differs from what the live generation's inventory says it should be.
 * The drift watcher and the fast no-op path both ask this one question.
 */
import { lstat, readFile } from 'node:fs/promises';
import type { Host } from '../host/host.js';
import { sha256, type InventoryEntry } from './inventory.js';

/** How a managed file differs from the live generation's inventory. */
export type DriftKind = 'modified' | 'removed' | 'mode' | 'owner';

/** How a managed file differs from its inventory entry, or undefined when it matches. */
export async function compareWithInventory(host: Host, entry: InventoryEntry): Promise<{ kind: DriftKind; state: string } | undefined> {
  const real = host.resolve(entry.path);
  const stat = await lstat(real).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (!stat) return { kind: 'removed', state: 'removed' };
  if (!stat.isFile()) return { kind: 'modified', state: `type ${stat.mode & 0o170000}` };
  const content = await readFile(real).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!content) return { kind: 'removed', state: 'removed' };
  const mode = stat.mode & 0o7777;
  const uid = host.ids.uid(entry.owner);
  const gid = host.ids.gid(entry.group);
  const state = `${sha256(content)} ${mode.toString(8)} ${stat.uid}:${stat.gid}`;
  if (sha256(content) !== entry.sha256) return { kind: 'modified', state };
  if (mode !== entry.mode) return { kind: 'mode', state };
  if ((uid !== undefined && uid !== stat.uid) || (gid !== undefined && gid !== stat.gid)) return { kind: 'owner', state };
  return undefined;
}
