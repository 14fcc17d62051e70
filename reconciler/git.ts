/**
 * The git source: resolves the revision to apply and exports its tree into a clean staging dir. A remote (URL
 * or bare repo) is mirrored into the state dir and only the watched ref is fetched; a local checkout exports its
 * committed tree (uncommitted edits never go live); a plain directory (no git) is copied and named by a hash of
 * its content.
 */
import { execa } from 'execa';
import { cp, mkdir, mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { simpleGit } from 'simple-git';
import { EdgeError } from './errors.js';
import { sha256 } from './inventory.js';

/** An exported revision. */
export interface ExportedRevision {
  /** The commit id, or `tree:<sha256>` for a plain directory. */
  revision: string;
  /** The exported tree (the desired-state repo root). */
  dir: string;
}

/** Where to get the desired state from. */
export interface SourceOptions {
  /** A URL, a bare repo, a checkout, or a plain directory. */
  repo: string;
  /** The branch, tag or commit to apply (remote and checkout; default: HEAD). */
  ref?: string;
  /** Where a remote is mirrored (`<state>/repo.git`). */
  mirrorDir: string;
  /** Parent of the staging dir the tree is exported into. */
  stagingParent: string;
  timeoutMs?: number;
}

function fetchError(message: string, cause: unknown, retry: 'transient' | 'refused' = 'transient'): EdgeError {
  const detail = cause instanceof Error ? cause.message.split('\n').filter(Boolean).slice(-2).join(' | ') : String(cause);
  return new EdgeError('FETCH_FAILED', `${message}: ${detail}`, { stage: 'fetch', retry, cause });
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** Resolves and exports the revision to apply. */
export async function exportRevision(options: SourceOptions): Promise<ExportedRevision> {
  await mkdir(options.stagingParent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(options.stagingParent, 'tree-'));
  if (await isDir(options.repo)) {
    const git = simpleGit(options.repo, { timeout: { block: options.timeoutMs ?? 60_000 } });
    const inside = await git.revparse(['--is-inside-work-tree']).catch(() => 'false');
    if (inside.trim() === 'true') return exportCheckout(options, dir);
    const bare = await git.revparse(['--is-bare-repository']).catch(() => 'false');
    if (bare.trim() !== 'true') return exportPlainDir(options.repo, dir);
  }
  return exportRemote(options, dir);
}

async function exportCheckout(options: SourceOptions, dir: string): Promise<ExportedRevision> {
  const git = simpleGit(options.repo);
  const prefix = (await git.revparse(['--show-prefix'])).trim();
  const revision = (await git.revparse([`${options.ref ?? 'HEAD'}^{commit}`]).catch((error) => {
    throw fetchError(`cannot resolve ${options.ref ?? 'HEAD'} in ${options.repo}`, error, 'refused');
  })).trim();
  const top = (await git.revparse(['--show-toplevel'])).trim();
  await archive(top, prefix ? `${revision}:${prefix.replace(/\/$/, '')}` : revision, dir);
  return { revision, dir };
}

async function exportRemote(options: SourceOptions, dir: string): Promise<ExportedRevision> {
  const ref = options.ref ?? 'HEAD';
  const timeout = { block: options.timeoutMs ?? 60_000 };
  try {
    if (!(await isDir(join(options.mirrorDir, 'objects')))) {
      await mkdir(options.mirrorDir, { recursive: true, mode: 0o700 });
      await simpleGit(options.mirrorDir, { timeout }).init(true);
    }
    const git = simpleGit(options.mirrorDir, { timeout });
    await git.fetch(['--no-tags', '--force', options.repo, `+${ref}:refs/edge/watched`]);
  } catch (error) {
    throw fetchError(`cannot fetch ${ref} from ${options.repo}`, error);
  }
  const revision = (await simpleGit(options.mirrorDir).revparse(['refs/edge/watched^{commit}'])).trim();
  await archive(options.mirrorDir, revision, dir);
  return { revision, dir };
}

async function archive(gitDir: string, treeish: string, dir: string): Promise<void> {
  try {
    await execa('git', ['-C', gitDir, 'archive', '--format=tar', treeish]).pipe('tar', ['-x', '-C', dir]);
  } catch (error) {
    throw fetchError(`cannot export ${treeish}`, error);
  }
}

async function exportPlainDir(source: string, dir: string): Promise<ExportedRevision> {
  await cp(source, dir, { recursive: true, verbatimSymlinks: true, filter: (path) => !path.endsWith('/.git') });
  const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  const hash = await Promise.all(files.map(async (file) => `${relative(dir, file)}\0${sha256(await readFile(file))}`));
  return { revision: `tree:${sha256(hash.join('\n'))}`, dir };
}
