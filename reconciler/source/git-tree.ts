/**
 * Reading a revision's tree: into memory for the stages (two git processes), or onto disk for what needs files
 * (hooks), through `git archive`.
 */
import { execa } from 'execa';
import { fetchError } from './git-errors.js';

/** A file of a tree in memory: its bytes and git mode (`100644`, `100755`, `120000` for a symlink). */
export interface TreeFile {
  content: Buffer;
  mode: string;
}

/** A tree in memory, by path relative to its root. */
export type TreeFiles = Map<string, TreeFile>;

/**
 * Reads a whole tree into memory with two git processes (`ls-tree` and one `cat-file --batch`): much cheaper than
 * writing hundreds of small files to disk only to read them back.
 */
export async function readTree(gitDir: string, treeish: string): Promise<TreeFiles> {
  let entries: { mode: string; sha: string; path: string }[];
  try {
    const listed = await execa('git', ['-C', gitDir, 'ls-tree', '-r', '-z', '--full-tree', treeish], { encoding: 'utf8' });
    entries = listed.stdout
      .split('\0')
      .filter(Boolean)
      .map((line) => {
        const tab = line.indexOf('\t');
        const [mode = '', type = '', sha = ''] = line.slice(0, tab).split(' ');
        return { mode, type, sha, path: line.slice(tab + 1) };
      })
      .filter((entry) => entry.type === 'blob');
  } catch (error) {
    throw fetchError(`cannot list ${treeish}`, error);
  }
  const files: TreeFiles = new Map();
  if (entries.length === 0) return files;
  let out: Buffer;
  try {
    const batch = await execa('git', ['-C', gitDir, 'cat-file', '--batch'], {
      input: `${entries.map((entry) => entry.sha).join('\n')}\n`,
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
    });
    out = Buffer.from(batch.stdout);
  } catch (error) {
    throw fetchError(`cannot read the blobs of ${treeish}`, error);
  }
  let offset = 0;
  for (const entry of entries) {
    const newline = out.indexOf(0x0a, offset);
    const size = Number(out.subarray(offset, newline).toString('latin1').split(' ')[2]);
    const start = newline + 1;
    files.set(entry.path, { content: out.subarray(start, start + size), mode: entry.mode });
    offset = start + size + 1;
  }
  return files;
}

/** Writes the tree of `treeish` into `dir`. */
export async function archive(gitDir: string, treeish: string, dir: string): Promise<void> {
  try {
    await execa('git', ['-C', gitDir, 'archive', '--format=tar', treeish]).pipe('tar', ['-x', '-C', dir]);
  } catch (error) {
    throw fetchError(`cannot export ${treeish}`, error);
  }
}
