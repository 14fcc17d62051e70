/**
 * Reading a revision's tree: into memory for the stages (two git processes), or onto disk for what needs files
 * (hooks), through `git archive`. The sizes are read first (`ls-tree -l`) and capped, so a huge blob is refused
 * by name before a byte of it is read.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgeError } from '../errors.js';
import { fetchError } from './git-errors.js';

/** The caps on a tree read into memory. */
export interface TreeLimits {
  /** The largest single file, in bytes. */
  maxFileBytes: number;
  /** The largest tree: the sum of its files, in bytes. */
  maxTreeBytes: number;
}

/** The default caps: generous for config files, far below what would strain the agent's memory. */
export const DEFAULT_TREE_LIMITS: TreeLimits = { maxFileBytes: 16 * 1024 * 1024, maxTreeBytes: 128 * 1024 * 1024 };

function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Refuses (TREE_TOO_LARGE, invalid: wait for a new commit) a tree over its caps, naming the file. */
export function checkTreeSize(entries: { path: string; size: number }[], limits: TreeLimits, what: string): void {
  let total = 0;
  for (const entry of entries) {
    if (entry.size > limits.maxFileBytes) {
      throw new EdgeError('TREE_TOO_LARGE', `${entry.path} in ${what} is ${mebibytes(entry.size)}, over the limit of ${mebibytes(limits.maxFileBytes)} per file (limits.maxFileBytes)`, {
        stage: 'fetch',
        retry: 'invalid',
        problems: [{ code: 'TREE_TOO_LARGE', file: entry.path, message: `${mebibytes(entry.size)} is over limits.maxFileBytes` }],
      });
    }
    total += entry.size;
    if (total > limits.maxTreeBytes) {
      throw new EdgeError('TREE_TOO_LARGE', `${what} holds more than ${mebibytes(limits.maxTreeBytes)} of files (limits.maxTreeBytes), reached at ${entry.path}`, {
        stage: 'fetch',
        retry: 'invalid',
        problems: [{ code: 'TREE_TOO_LARGE', file: entry.path, message: 'the tree is over limits.maxTreeBytes here' }],
      });
    }
  }
}

/** A file of a tree in memory: its bytes and git mode (`100644`, `100755`, `120000` for a symlink). */
export interface TreeFile {
  content: Buffer;
  mode: string;
  /** The git blob id: names the content (caches key on it). */
  blob?: string;
}

/** A tree in memory, by path relative to its root. */
export type TreeFiles = Map<string, TreeFile>;

/**
 * Reads a whole tree into memory with two git processes (`ls-tree` and one `cat-file --batch`): much cheaper than
 * writing hundreds of small files to disk only to read them back.
 */
export async function readTree(gitDir: string, treeish: string, limits: TreeLimits = DEFAULT_TREE_LIMITS): Promise<TreeFiles> {
  let entries: { mode: string; sha: string; path: string; size: number }[];
  try {
    const { execa } = await import('execa');
    const listed = await execa('git', ['-C', gitDir, 'ls-tree', '-r', '-z', '-l', '--full-tree', '--end-of-options', treeish], { encoding: 'utf8' });
    entries = listed.stdout
      .split('\0')
      .filter(Boolean)
      .map((line) => {
        const tab = line.indexOf('\t');
        const [mode = '', type = '', sha = '', size = '0'] = line.slice(0, tab).split(/ +/);
        return { mode, type, sha, size: Number(size), path: line.slice(tab + 1) };
      })
      .filter((entry) => entry.type === 'blob');
  } catch (error) {
    throw fetchError(`cannot list ${treeish}`, error);
  }
  checkTreeSize(entries, limits, treeish);
  const files: TreeFiles = new Map();
  if (entries.length === 0) return files;
  let out: Buffer;
  try {
    out = await catBlobs(gitDir, entries.map((entry) => entry.sha));
  } catch (error) {
    throw fetchError(`cannot read the blobs of ${treeish}`, error);
  }
  let offset = 0;
  for (const entry of entries) {
    const newline = out.indexOf(0x0a, offset);
    const size = Number(out.subarray(offset, newline).toString('latin1').split(' ')[2]);
    const start = newline + 1;
    files.set(entry.path, { content: out.subarray(start, start + size), mode: entry.mode, blob: entry.sha });
    offset = start + size + 1;
  }
  return files;
}

/**
 * The output of `git cat-file --batch` for `shas`. git writes each blob with its own write(2), so a pipe would wake
 * this process once per blob (thousands of reads for a large repo); its output goes to a private temp file instead,
 * read back in one go.
 */
async function catBlobs(gitDir: string, shas: readonly string[]): Promise<Buffer> {
  const scratch = await mkdtemp(join(tmpdir(), 'edge-blobs-'));
  const file = join(scratch, 'batch');
  const fd = openSync(file, 'wx', 0o600);
  try {
    const child = spawn('git', ['-C', gitDir, 'cat-file', '--batch', '--buffer'], { stdio: ['pipe', fd, 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4096)));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(`${shas.join('\n')}\n`);
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (code !== 0) throw new Error(`git cat-file --batch ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderr ? `: ${stderr.trim()}` : ''}`);
    return readFileSync(file);
  } finally {
    closeSync(fd);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Writes the tree of `treeish` into `dir`. */
export async function archive(gitDir: string, treeish: string, dir: string): Promise<void> {
  try {
    const { execa } = await import('execa');
    await execa('git', ['-C', gitDir, 'archive', '--format=tar', '--end-of-options', treeish]).pipe('tar', ['-x', '-C', dir]);
  } catch (error) {
    throw fetchError(`cannot export ${treeish}`, error);
  }
}
