/**
 * A desired-state repo given as a local path (a bare repo, a checkout, a plain dir) must exist before git or the
 * loader is asked about it: otherwise git answers with its "access rights" text and the loader with a bare ENOENT.
 */
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { EdgeError, type Stage } from '../errors.js';

/** The local path `repo` names, or undefined for a remote (`https://`, `ssh://`, `git@host:path`, `host:path`) or an option. */
export function localRepoPath(repo: string): string | undefined {
  // Not a path at all: what would reach git as an option is refused by the source's own checks, by name.
  if (repo.startsWith('-')) return undefined;
  if (repo.startsWith('file://')) return fileURLToPath(repo);
  if (repo.includes('://')) return undefined;
  const colon = repo.indexOf(':');
  // git's own rule: a colon before any slash makes an scp-like remote.
  if (colon > 0 && (repo.indexOf('/') === -1 || repo.indexOf('/') > colon)) return undefined;
  return repo;
}

/** Refuses with REPO_NOT_FOUND, naming the path, a local repo path that does not exist or is not a directory. */
export async function requireLocalRepo(repo: string, stage: Stage): Promise<void> {
  const path = localRepoPath(repo);
  if (path === undefined) return;
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (info?.isDirectory()) return;
  const why = info ? 'is not a directory' : 'does not exist';
  throw new EdgeError('REPO_NOT_FOUND', `the desired-state repo ${path} ${why}: give a URL, a bare repo, a checkout or a plain dir`, {
    stage,
    retry: 'invalid',
  });
}
