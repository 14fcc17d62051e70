/**
 * A real git repo for an app release test: a tiny app (a VERSION file and whatever files a test adds) whose
 * versions are commits on `main`, optionally tagged, as a developer would push them.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { git } from './git-repo.js';

/** An app repo and the commits made so far, by version. */
export interface AppRepo {
  dir: string;
  commits: Record<string, string>;
  /** Commits `VERSION` = version (and extra files); tags it when asked; returns the SHA. */
  release(version: string, options?: { files?: Record<string, string>; tag?: string; branch?: string }): Promise<string>;
}

/** A new app repo with no commits yet (its branch is `main`). */
export async function appRepo(parent = tmpdir()): Promise<AppRepo> {
  const dir = await mkdtemp(join(parent, 'edge-app-'));
  await git(dir, 'init', '-q', '-b', 'main');
  const commits: Record<string, string> = {};
  return {
    dir,
    commits,
    async release(version, options = {}) {
      if (options.branch) await git(dir, 'checkout', '-q', '-B', options.branch);
      const files = { VERSION: `${version}\n`, ...options.files };
      for (const [path, text] of Object.entries(files)) {
        await mkdir(dirname(join(dir, path)), { recursive: true });
        await writeFile(join(dir, path), text, { mode: path.endsWith('.sh') ? 0o755 : 0o644 });
      }
      await git(dir, 'add', '-A');
      await git(dir, 'commit', '-q', '--allow-empty', '-m', `release ${version}`);
      const sha = await git(dir, 'rev-parse', 'HEAD');
      if (options.tag) await git(dir, 'tag', '-f', options.tag);
      commits[version] = sha;
      return sha;
    },
  };
}
