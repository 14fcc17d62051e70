/**
 * What a killed run leaves behind, removed at the start of the next one (under the lock, before recovery): temp
 * files of atomic writes in the state dir, half-written and half-pruned generations, exported trees, and the
 * validators' staging dirs and confined commands' scratch dirs in the temp dir (host/run-temp.ts). Several of these hold rendered env files, so secrets.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTempOwner } from '../host/run-temp.js';
import type { StateStore } from './state-store.js';

/** A temp file of `writeFileAtomic`: `<name>.tmp-<8 hex>`. */
const STATE_TEMP = /\.tmp-[0-9a-f]{8}$/;
/** A temp dir named by an earlier version (no pid) is a leftover once older than any run's validation could be. */
const UNOWNED_AGE_MS = 60 * 60_000;

/** Removes every leftover of a killed run; returns what it removed (paths), for the log. */
export async function removeLeftovers(store: StateStore, temp = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  const remove = async (path: string) => {
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  };
  for (const name of await list(store.dir)) if (STATE_TEMP.test(name)) await remove(join(store.dir, name));
  for (const name of await list(join(store.dir, 'staging'))) await remove(join(store.dir, 'staging', name));
  for (const name of await store.removePartialGenerations()) removed.push(join(store.dir, 'generations', name));
  for (const name of await list(temp)) {
    const owner = runTempOwner(name);
    if (owner === undefined || owner === process.pid) continue;
    if (owner === 'unknown' ? await olderThan(join(temp, name), UNOWNED_AGE_MS) : !processExists(owner)) await remove(join(temp, name));
  }
  return removed;
}

/** True while a process with this pid exists (EPERM: it exists but belongs to someone else). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && Date.now() - info.mtimeMs > ms;
}

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}
