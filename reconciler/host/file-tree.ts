/**
 * Writes rendered files into a private tree that mirrors the host (`<root>/etc/caddy/Caddyfile`), for the tools
 * that read files from disk: the validators' staging dir, caddy's validation copy.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One file of the tree: its host path and what to write there. */
export interface TreeEntry {
  path: string;
  content: string | Buffer;
}

/**
 * Writes each entry to `<root><path>`, making each directory once (mode `dirMode`, before the umask) and each file
 * with `fileMode`. Synchronously: a host holds thousands of small files, each call cheaper than its trip through
 * Node's thread pool.
 */
export function writeFileTree(root: string, entries: Iterable<TreeEntry>, modes: { dirMode: number; fileMode: number }): void {
  const made = new Set<string>();
  for (const entry of entries) {
    const path = join(root, entry.path);
    if (!made.has(dirname(path))) {
      mkdirSync(dirname(path), { recursive: true, mode: modes.dirMode });
      made.add(dirname(path));
    }
    writeFileSync(path, entry.content, { mode: modes.fileMode });
  }
}
