/**
 * Real git repos for tests: a copy of the example desired-state committed into a fresh repo, and commits that
 * change it, as a developer would push them.
 */
import { execa } from 'execa';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE_REPO } from './paths.js';

async function git(repo: string, ...args: string[]): Promise<string> {
  const result = await execa('git', ['-C', repo, ...args], {
    env: { GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 'test@example.com', GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 'test@example.com' },
  });
  return result.stdout.trim();
}

/** A git repo holding the example desired-state as its first commit; returns its path. */
export async function exampleGitRepo(parent = tmpdir()): Promise<string> {
  const repo = await mkdtemp(join(parent, 'edge-git-'));
  await cp(EXAMPLE_REPO, repo, { recursive: true });
  await git(repo, 'init', '-q', '-b', 'release');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'example desired state');
  return repo;
}

/** Edits one file and commits; returns the new commit id. */
export async function commitEdit(repo: string, file: string, change: (text: string) => string, message = `edit ${file}`): Promise<string> {
  const path = join(repo, file);
  const before = await readFile(path, 'utf8');
  const after = change(before);
  if (after === before) throw new Error(`the edit of ${file} changed nothing`);
  await writeFile(path, after);
  await git(repo, 'commit', '-q', '-am', message);
  return git(repo, 'rev-parse', 'HEAD');
}

/** Reverts the last commit, as people roll back; returns the new commit id. */
export async function revertLast(repo: string): Promise<string> {
  await git(repo, 'revert', '--no-edit', 'HEAD');
  return git(repo, 'rev-parse', 'HEAD');
}

/** The current commit id. */
export function head(repo: string): Promise<string> {
  return git(repo, 'rev-parse', 'HEAD');
}

/** Runs any git command in the repo. */
export { git };
