/**
 * The files of one revision as the load stage sees them, from an exported dir or from a tree in memory. Symlinks
 * are resolved first and judged by where they land (inside the repo: followed, directories included; outside or
 * in a loop: refused). Every file is scanned for secrets, whatever its size or bytes. The files the loader reads
 * as text (edge.yaml, hosts, roles, templates) must be strict UTF-8 without NUL and at most MAX_TEXT_BYTES.
 */
import { createReadStream } from 'node:fs';
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import { join, posix, sep } from 'node:path';
import type { Problem } from '../errors.js';
import { SecretScanner } from '../secrets/secret-scan.js';
import type { TreeFiles } from './git-tree.js';
import type { ScanMemory } from '../cache/caches.js';

/** The largest file the loader reads as text. */
export const MAX_TEXT_BYTES = 1024 * 1024;

/** How many symlinks one path may pass through (the kernel's own limit). */
const MAX_SYMLINK_HOPS = 40;

/** How many links to folders a repo may hold: each one repeats a folder's files. */
const MAX_FOLDER_LINKS = 64;

/** A revision's files: the text the loader reads, every path present, and what was refused on the way. */
export interface RepoFiles {
  /** edge.yaml, hosts, roles and templates, decoded, by repo-relative path (sorted). */
  texts: Map<string, string>;
  /** Every file of the revision (through symlinks), text or not. */
  paths: Set<string>;
  problems: Problem[];
}

/** True for the files the loader parses or renders: they must be text. */
export function isTextInput(file: string): boolean {
  return (
    file === 'edge.yaml' ||
    /^hosts\/[^/]+\.ya?ml$/.test(file) ||
    /^roles\/[^/]+\/role\.ya?ml$/.test(file) ||
    /^roles\/[^/]+\/templates\//.test(file)
  );
}

/** Decodes a text input strictly; a problem names the file and the line of the first bad byte. */
export function decodeText(file: string, bytes: Buffer): { text?: string; problem?: Problem } {
  if (bytes.length > MAX_TEXT_BYTES) {
    return { problem: { code: 'FILE_TOO_LARGE', file, message: `${file} is larger than ${MAX_TEXT_BYTES} bytes` } };
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) return { problem: encodingProblem(file, bytes, nul, 'a NUL byte') };
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes) };
  } catch {
    return { problem: encodingProblem(file, bytes, firstInvalidUtf8(bytes), 'bytes that are not UTF-8') };
  }
}

/** Reads every file under `repoDir` (not .git). */
export async function readRepoDir(repoDir: string): Promise<RepoFiles> {
  const root = await realpath(repoDir);
  const result: RepoFiles = { texts: new Map(), paths: new Set(), problems: [] };
  await walkDir(root, root, '', result, { linked: false, folderLinks: 0 });
  result.texts = sortedMap(result.texts);
  return result;
}

/** The same for a tree in memory (git blobs; mode 120000 is a symlink whose content is its target). */
export function readRepoTree(tree: TreeFiles, scans?: ScanMemory): RepoFiles {
  const result: RepoFiles = { texts: new Map(), paths: new Set(), problems: [] };
  const add = (file: string, content: Buffer, blob?: string): void => {
    result.paths.add(file);
    // A blob scanned clean before is clean: the scan depends on its bytes only.
    if (!blob || !scans?.isClean(blob)) {
      const scanner = new SecretScanner(file);
      scanner.push(content);
      const found = scanner.finish();
      result.problems.push(...found);
      if (blob && found.length === 0) scans?.markClean(blob);
    }
    addText(file, content, result);
  };
  let folderLinks = 0;
  let folders: Set<string> | undefined;
  for (const [file, entry] of tree) {
    if (entry.mode !== '120000') {
      add(file, entry.content, entry.blob);
      continue;
    }
    folders ??= folderSet(tree);
    const target = resolveTreeLink(tree, folders, file);
    if (typeof target !== 'string') {
      result.problems.push({ code: 'PATH_SYMLINK_ESCAPE', file, message: `symlink ${file} ${target.reason}` });
      continue;
    }
    const blob = tree.get(target);
    if (blob && blob.mode !== '120000') {
      add(file, blob.content);
      continue;
    }
    // A link to a folder: its files appear under the link's path too (one level: links inside it are refused).
    if (++folderLinks > MAX_FOLDER_LINKS) {
      result.problems.push({ code: 'PATH_SYMLINK_ESCAPE', file, message: `symlink ${file} is one link to a folder too many (at most ${MAX_FOLDER_LINKS})` });
      continue;
    }
    for (const [inner, innerEntry] of tree) {
      if (!inner.startsWith(`${target}/`)) continue;
      const shown = `${file}/${inner.slice(target.length + 1)}`;
      if (innerEntry.mode === '120000') {
        result.problems.push({ code: 'PATH_SYMLINK_ESCAPE', file: shown, message: `symlink ${shown} is a link inside a linked folder` });
        continue;
      }
      add(shown, innerEntry.content);
    }
  }
  result.texts = sortedMap(result.texts);
  return result;
}

/** Resolves a link in a tree to a path inside it, hop by hop; a reason when it leaves the tree or loops. */
function resolveTreeLink(tree: TreeFiles, folders: ReadonlySet<string>, file: string): string | { reason: string } {
  let current = file;
  for (let hop = 0; hop < MAX_SYMLINK_HOPS; hop++) {
    const entry = tree.get(current);
    if (!entry || entry.mode !== '120000') break;
    const target = posix.normalize(posix.join(posix.dirname(current), entry.content.toString('utf8')));
    if (target.startsWith('/') || target === '..' || target.startsWith('../')) return { reason: 'points outside the repo' };
    if (target === '.' || file.startsWith(`${target}/`)) return { reason: 'points at a folder that holds it (a loop)' };
    current = target;
  }
  if (tree.get(current)?.mode === '120000') return { reason: 'is a chain of more than 40 links' };
  if (!tree.has(current) && !folders.has(current)) return { reason: 'points at nothing in the repo' };
  return current;
}

/** Where a walk is: inside a folder reached through a link or not, and how many folder links it followed. */
interface Walk {
  linked: boolean;
  folderLinks: number;
}

/** Every folder of a tree (the parents of its paths). */
function folderSet(tree: TreeFiles): Set<string> {
  const folders = new Set<string>();
  for (const path of tree.keys()) {
    for (let at = path.indexOf('/'); at > 0; at = path.indexOf('/', at + 1)) folders.add(path.slice(0, at));
  }
  return folders;
}

async function walkDir(root: string, dir: string, prefix: string, result: RepoFiles, walk: Walk): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    const file = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (file === '.git') continue;
    const absolute = join(dir, entry.name);
    if (entry.isDirectory()) {
      await walkDir(root, absolute, file, result, walk);
      continue;
    }
    if (entry.isSymbolicLink()) {
      await followLink(root, absolute, file, result, walk);
      continue;
    }
    if (entry.isFile()) await readFileInto(absolute, file, result);
  }
}

async function followLink(root: string, absolute: string, file: string, result: RepoFiles, walk: Walk): Promise<void> {
  const target = await realpath(absolute).catch(() => undefined);
  const refuse = (reason: string): void => {
    result.problems.push({ code: 'PATH_SYMLINK_ESCAPE', file, message: `symlink ${file} ${reason}` });
  };
  if (!target) {
    const dangling = await readlink(absolute).catch(() => '?');
    refuse(`points at nothing (${dangling.startsWith('/') ? 'an absolute path' : 'a missing file'})`);
    return;
  }
  if (target !== root && !target.startsWith(root + sep)) return refuse('points outside the repo');
  const kind = await stat(target);
  if (kind.isFile()) return readFileInto(target, file, result);
  if (!kind.isDirectory()) return refuse('points at something that is neither a file nor a folder');
  const linkDir = join(root, ...file.split('/').slice(0, -1));
  const realParent = await realpath(linkDir);
  if (target === root || realParent === target || realParent.startsWith(target + sep)) {
    return refuse('points at a folder that holds it (a loop)');
  }
  // One level only: a link to a folder inside a linked folder could repeat the repo without end.
  if (walk.linked) return refuse('is a link to a folder inside a linked folder');
  if (++walk.folderLinks > MAX_FOLDER_LINKS) return refuse(`is one link to a folder too many (at most ${MAX_FOLDER_LINKS})`);
  await walkDir(root, target, file, result, { ...walk, linked: true });
}

async function readFileInto(absolute: string, file: string, result: RepoFiles): Promise<void> {
  result.paths.add(file);
  const scanner = new SecretScanner(file);
  const keep = isTextInput(file);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of createReadStream(absolute, { highWaterMark: 256 * 1024 })) {
    const buffer = chunk as Buffer;
    scanner.push(buffer);
    size += buffer.length;
    if (keep && size <= MAX_TEXT_BYTES + 1) chunks.push(buffer);
  }
  result.problems.push(...scanner.finish());
  if (keep) addText(file, size > MAX_TEXT_BYTES ? Buffer.alloc(MAX_TEXT_BYTES + 1) : Buffer.concat(chunks), result);
}

function addText(file: string, bytes: Buffer, result: RepoFiles): void {
  if (!isTextInput(file)) return;
  const decoded = decodeText(file, bytes);
  if (decoded.problem) result.problems.push(decoded.problem);
  else if (decoded.text !== undefined) result.texts.set(file, decoded.text);
}

function encodingProblem(file: string, bytes: Buffer, offset: number, what: string): Problem {
  let line = 1;
  for (let index = 0; index < offset; index++) if (bytes[index] === 0x0a) line++;
  return { code: 'FILE_ENCODING', file, line, message: `${file} holds ${what} (line ${line}); save it as UTF-8 text` };
}

/** The offset of the first byte that breaks UTF-8 (overlongs, surrogates and values past U+10FFFF included). */
function firstInvalidUtf8(bytes: Buffer): number {
  let low = 0;
  let high = bytes.length;
  // The longest prefix without an invalid sequence (a character cut at the end is not one, in stream mode).
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      low = mid;
    } catch {
      high = mid - 1;
    }
  }
  return Math.min(low, bytes.length - 1);
}

function sortedMap<T>(map: Map<string, T>): Map<string, T> {
  return new Map([...map].sort(([a], [b]) => (a < b ? -1 : 1)));
}
