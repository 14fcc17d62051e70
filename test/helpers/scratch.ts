/**
 * Temp dirs that a suite removes when it ends: `scratchDir` in a test, `after(removeScratchDirs)` in the suite.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();

/** A new empty dir under the system temp dir, remembered for `removeScratchDirs`. */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Removes every dir `scratchDir` made so far. */
export async function removeScratchDirs(): Promise<void> {
  await Promise.all([...made].map((dir) => rm(dir, { recursive: true, force: true })));
  made.clear();
}
