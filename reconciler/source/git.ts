/**
 * The git source: resolves the revision to apply and exports its tree into a clean staging dir. A remote (URL
 * or bare repo) is mirrored into the state dir and only the watched ref is fetched: a branch (`release`) or the
 * newest tag matching a pattern (`prod-*`, see git-refs.ts); every network operation has a deadline and runs
 * with the deploy key or token of `auth`. A local checkout exports its committed tree (uncommitted edits never go
 * live); a plain directory (no git) is copied and named by a hash of its content.
 */
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { simpleGit } from 'simple-git';
import { isCommitId, refNameProblem } from '../config/git-names.js';
import { EdgeError } from '../errors.js';
import { sha256 } from '../state/inventory.js';
import { describeRepo, fetchError } from './git-errors.js';
import { requireLocalRepo } from './repo-path.js';
import { ensureMirror, fetchNewestTag, fetchRef, remoteAccess, tagOf, type RemoteOptions } from './git-remote.js';
import { archive, checkTreeSize, DEFAULT_TREE_LIMITS, readTree, type TreeFiles, type TreeLimits } from './git-tree.js';

/** What kind of source a revision came from; trust checks apply to `remote` only. */
export type SourceKind = 'remote' | 'checkout' | 'directory';

/** A revision once resolved, before its tree is read: what the trust checks look at. */
export interface ResolvedRevision {
  /** The commit id, or `tree:<sha256>` for a plain directory. */
  revision: string;
  kind: SourceKind;
  /** The resolved ref (`refs/heads/release`, `refs/tags/prod-1.2.3`, `HEAD`); none for a plain directory. */
  ref?: string;
  /** The tag name, when the ref is a tag. */
  tag?: string;
  /** The repository holding the revision (the mirror, or the checkout); none for a plain directory. */
  gitDir?: string;
}

/** An exported revision. */
export interface ExportedRevision extends ResolvedRevision {
  /** False when `skipExport` said the tree is not needed: `dir` is then empty. */
  exported: boolean;
  /** The exported tree (the desired-state repo root). */
  dir: string;
  /** The tree read straight from git into memory (not for a plain directory, which is read from `dir`). */
  files?: TreeFiles;
  /** Writes the tree into `dir`, for what needs it on disk (hooks); a no-op when it is there already. */
  materialize(): Promise<void>;
}

/** Where to get the desired state from. */
export interface SourceOptions extends RemoteOptions {
  /** A URL, a bare repo, a checkout, or a plain directory. */
  repo: string;
  /** The branch, tag or commit to apply (remote and checkout; default: HEAD). */
  ref?: string;
  /** Apply the newest tag matching this glob (`prod-*`); remote only, exclusive with `ref`. */
  tagPattern?: string;
  /** Parent of the staging dir the tree is exported into. */
  stagingParent: string;
  /** Asked once the revision is resolved: true skips the export (a live, unchanged revision needs no tree). */
  skipExport?: (revision: string) => Promise<boolean>;
  /** Runs once the revision is resolved and before anything of its tree is read (the trust checks); may throw. */
  beforeRead?: (resolved: ResolvedRevision) => Promise<void>;
  /** The caps on the tree read (default DEFAULT_TREE_LIMITS). */
  limits?: TreeLimits;
  /** The desired state is this folder of the repo (as Flux's `path`), not its root; a clean relative path. */
  path?: string;
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** Resolves and exports the revision to apply. */
export async function exportRevision(options: SourceOptions): Promise<ExportedRevision> {
  if (options.tagPattern !== undefined && options.ref !== undefined) {
    throw new EdgeError('FETCH_FAILED', `the source ${describeRepo(options.repo)} sets both a ref (${options.ref}) and a tag pattern (${options.tagPattern}): choose one`, {
      stage: 'fetch',
      retry: 'invalid',
    });
  }
  await mkdir(options.stagingParent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(options.stagingParent, 'tree-'));
  try {
    return await exportInto(options, dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function exportInto(given: SourceOptions, dir: string): Promise<ExportedRevision> {
  await requireLocalRepo(given.repo, 'fetch');
  // A local dir is named by its absolute path, so that it is never mistaken for an option or a URL.
  const options = !given.repo.startsWith('-') && (await isDir(given.repo)) ? { ...given, repo: resolve(given.repo) } : given;
  if (await isDir(options.repo)) {
    const place = options.tagPattern === undefined ? await workTreePlace(options.repo, options.ref ?? 'HEAD') : undefined;
    if (place) return exportCheckout(options, dir, place);
    const [inside = 'false', bare = 'false'] = (await simpleGit(options.repo).revparse(['--is-inside-work-tree', '--is-bare-repository']).catch(() => '')).split('\n');
    if (inside === 'true' || bare !== 'true') {
      if (options.tagPattern !== undefined) {
        throw new EdgeError('FETCH_FAILED', `a tag pattern (${options.tagPattern}) needs a remote or bare repo, and ${options.repo} is a working directory`, {
          stage: 'fetch',
          retry: 'invalid',
        });
      }
      return inside === 'true' ? exportCheckout(options, dir) : exportPlainDir(options, dir);
    }
  }
  return exportRemote(options, dir);
}

/** Runs the caller's checks on the resolved revision, then asks whether the tree is needed at all. */
async function resolved(options: SourceOptions, revision: ResolvedRevision): Promise<boolean> {
  await options.beforeRead?.(revision);
  return (await options.skipExport?.(revision.revision)) === true;
}

/** A name rev-parse resolves as given in a checkout (no branch to prefer over a tag of the same name). */
function unambiguous(asked: string): boolean {
  return asked === 'HEAD' || isCommitId(asked) || asked.startsWith('refs/');
}

/** The name a checkout resolves for `ref`: a branch before a tag of the same name, never an option. */
async function checkoutRef(repo: string, asked: string): Promise<string> {
  if (unambiguous(asked)) return asked;
  const problem = asked.startsWith('-') ? 'begins with "-"' : /^[0-9a-f]{4,63}$/.test(asked) ? undefined : refNameProblem(asked);
  if (problem) throw new EdgeError('FETCH_FAILED', `ref ${JSON.stringify(asked)} ${problem}`, { stage: 'fetch', retry: 'invalid' });
  const branch = `refs/heads/${asked}`;
  // Not --quiet: simple-git takes an exit code without a word on stderr for success, and a missing branch as found.
  const known = (await simpleGit(repo).raw(['show-ref', '--verify', branch]).catch(() => '')).trim() !== '';
  return known ? branch : asked;
}

/** Where a checkout's dir sits in its work tree, and what `asked` resolves to there. */
interface CheckoutPlace {
  prefix: string;
  top: string;
  revision: string;
  ref: string;
}

/** The answer of `git rev-parse --show-prefix --show-toplevel X^{commit} --symbolic-full-name X`, when it is whole. */
function placeOf(lines: string[], asked: string): CheckoutPlace | undefined {
  const [prefix = '', top = '', resolved = '', ref = ''] = lines;
  return lines.length >= 3 && top.startsWith('/') && isCommitId(resolved) ? { prefix, top, revision: resolved, ref: ref || asked } : undefined;
}

/**
 * Where `repo` sits in a work tree and what `asked` (HEAD, a commit id, a full ref name) resolves to there, from
 * one process: a no-op of a checkout starts no other. Undefined when it is no work tree, or the name needs more
 * (a short name, which a branch of that name must win; an unknown one): the step-by-step path answers then.
 */
async function workTreePlace(repo: string, asked: string): Promise<CheckoutPlace | undefined> {
  if (!unambiguous(asked)) return undefined;
  const args = ['rev-parse', '--is-inside-work-tree', '--show-prefix', '--show-toplevel', `${asked}^{commit}`, '--symbolic-full-name', asked];
  // raw, not revparse: that trims, and an empty prefix is an empty line.
  const [inside, ...lines] = (await simpleGit(repo).raw(args).catch(() => '')).split('\n');
  return inside === 'true' ? placeOf(lines, asked) : undefined;
}

/**
 * One `git rev-parse` answers it all in the usual case (a process is most of what a no-op of a checkout costs); a
 * name it cannot answer for at once (unknown, or also a path) is asked again step by step, which names the error.
 */
async function checkoutPlace(repo: string, asked: string): Promise<CheckoutPlace> {
  const git = simpleGit(repo);
  // raw, not revparse: that trims, and an empty prefix is an empty first line.
  const lines = (await git.raw(['rev-parse', '--show-prefix', '--show-toplevel', `${asked}^{commit}`, '--symbolic-full-name', asked]).catch(() => '')).split('\n');
  const place = placeOf(lines, asked);
  if (place) return place;
  const revision = (await git.revparse(['--verify', '--quiet', `${asked}^{commit}`]).catch((error) => {
    throw fetchError(`cannot resolve ${asked} in ${repo}`, error, 'refused');
  })).trim();
  // --quiet: an unknown name exits 1 with nothing on stderr, which simple-git takes for an empty answer.
  if (!isCommitId(revision)) throw fetchError(`cannot resolve ${asked} in ${repo}`, new Error(`${asked} names no commit`), 'refused');
  return {
    prefix: (await git.revparse(['--show-prefix'])).trim(),
    top: (await git.revparse(['--show-toplevel'])).trim(),
    revision,
    ref: (await git.revparse(['--symbolic-full-name', asked]).catch(() => '')).trim() || asked,
  };
}

async function exportCheckout(options: SourceOptions, dir: string, known?: CheckoutPlace): Promise<ExportedRevision> {
  const { prefix, top, revision, ref } = known ?? (await checkoutPlace(options.repo, await checkoutRef(options.repo, options.ref ?? 'HEAD')));
  const folder = [prefix.replace(/\/$/, ''), options.path].filter(Boolean).join('/');
  const treeish = folder ? `${revision}:${folder}` : revision;
  const skip = await resolved(options, { revision, kind: 'checkout', ref, ...tagOf(ref), gitDir: top });
  if (options.path && !skip) await requireFolder(top, revision, folder, options.path);
  const files = skip ? undefined : await readTree(top, treeish, options.limits);
  return { revision, dir, kind: 'checkout', ref, ...tagOf(ref), gitDir: top, exported: !skip, files, materialize: once(() => archive(top, treeish, dir)) };
}

async function exportRemote(options: SourceOptions, dir: string): Promise<ExportedRevision> {
  const remote = await remoteAccess(options);
  await ensureMirror(options.mirrorDir).catch((error) => {
    throw fetchError(`cannot create the mirror ${options.mirrorDir}`, error);
  });
  const { ref, tag } = options.tagPattern !== undefined ? await fetchNewestTag(remote, options.tagPattern) : await fetchRef(remote, options.ref ?? 'HEAD');
  const notCommit = (error: unknown) => fetchError(`${ref} from ${describeRepo(options.repo)} is not a commit`, error, 'refused');
  const revision = (await simpleGit(options.mirrorDir).revparse(['--verify', '--quiet', 'refs/edge/watched^{commit}']).catch((error) => {
    throw notCommit(error);
  })).trim();
  // --quiet: a ref to a tree or a blob exits 1 with nothing on stderr, which simple-git takes for an empty answer.
  if (!isCommitId(revision)) throw notCommit(new Error('it peels to no commit'));
  const found: ResolvedRevision = { revision, kind: 'remote', ref, ...(tag ? { tag } : {}), gitDir: options.mirrorDir };
  const skip = await resolved(options, found);
  const treeish = options.path ? `${revision}:${options.path}` : revision;
  if (options.path && !skip) await requireFolder(options.mirrorDir, revision, options.path, options.path);
  const files = skip ? undefined : await readTree(options.mirrorDir, treeish, options.limits);
  return { ...found, dir, exported: !skip, files, materialize: once(() => archive(options.mirrorDir, treeish, dir)) };
}

/** Refuses a revision without the configured folder, naming both, before anything is read. */
async function requireFolder(gitDir: string, revision: string, folder: string, configured: string): Promise<void> {
  const type = await simpleGit(gitDir).raw(['cat-file', '-t', '--', `${revision}:${folder}`]).then((text) => text.trim(), () => 'missing');
  if (type !== 'tree') {
    throw new EdgeError('PATH_NOT_IN_REVISION', `the configured path ${configured} is not a folder of ${revision.slice(0, 12)} (${type})`, {
      stage: 'fetch',
      retry: 'refused',
      problems: [{ code: 'PATH_NOT_IN_REVISION', file: configured, message: `not a folder at ${revision.slice(0, 12)}` }],
    });
  }
}

/** Runs `fn` the first time only; later calls share its promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

async function exportPlainDir(options: SourceOptions, dir: string): Promise<ExportedRevision> {
  const source = options.repo;
  const listed = (await readdir(source, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile() && !relative(source, entry.parentPath).split('/').includes('.git'))
    .map((entry) => join(entry.parentPath, entry.name));
  const sized = await Promise.all(listed.map(async (file) => ({ path: relative(source, file), size: (await lstat(file)).size })));
  checkTreeSize(sized, options.limits ?? DEFAULT_TREE_LIMITS, source);
  await cp(source, dir, { recursive: true, verbatimSymlinks: true, filter: (path) => !path.endsWith('/.git') });
  const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  const hash = await Promise.all(files.map(async (file) => `${relative(dir, file)}\0${sha256(await readFile(file))}`));
  const revision = `tree:${sha256(hash.join('\n'))}`;
  await options.beforeRead?.({ revision, kind: 'directory' });
  return { revision, dir, kind: 'directory', exported: true, materialize: async () => undefined };
}
