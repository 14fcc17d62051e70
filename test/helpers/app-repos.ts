/**
 * Real git repos of the example apps (examples/apps/<app>), as their developers would push them: a working clone
 * and a bare repo (the app's "forge") that the agent fetches from. Each repo gets the same history:
 *
 *   v1 ── v2            branch `main` (what `follow: main` follows), tags v1 and v2
 *          ├── v3       tag v3: its /healthz answers 500, so the release fails its health check
 *          └── broken   tag broken-build: a syntax error that fails `sh build.sh` (python3 -m compileall)
 *
 * Place the bare repo where the agent can read it: for the e2e container, under its root folder
 * (`box.hostPath('/srv/forge/apps/lod.git')`), as e2e-host.ts does for the desired-state repo.
 */
import { rmSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { git } from './git-repo.js';
import { PROJECT_ROOT } from './paths.js';

/** The example apps' sources. */
export const EXAMPLE_APPS = join(PROJECT_ROOT, 'examples', 'apps');

/** The example apps. */
export type ExampleApp = 'lod' | 'model-gateway';

/** The branch the app's developers push to (and `follow` mode follows). */
export const APP_BRANCH = 'main';

/** The tag of the commit whose build fails. */
export const BROKEN_BUILD_TAG = 'broken-build';

/** The commit of each named point of an app repo's history. */
export interface AppCommits {
  v1: string;
  v2: string;
  /** Answers /healthz with 500. */
  v3: string;
  /** Its build fails (a syntax error compileall refuses). */
  broken: string;
}

/** Where an app repo lives. */
export interface AppRepoPlaces {
  /** The bare repo the agent fetches from (created; its parent folders too). */
  bare: string;
  /** The developers' working clone (default: `<bare without .git>-work`). */
  work?: string;
}

/** An example app as a real git repo with the history above. */
export class AppRepo {
  private constructor(
    readonly app: ExampleApp,
    /** The bare repo the agent fetches from. */
    readonly bare: string,
    /** The working clone commits are made in. */
    readonly work: string,
    /** v1, v2, v3 and the broken build. */
    readonly commits: AppCommits,
  ) {}

  /** Creates the working clone and the bare repo with tags v1, v2, v3 and broken-build, `main` at v2. */
  static async create(app: ExampleApp, places: AppRepoPlaces): Promise<AppRepo> {
    const work = places.work ?? `${places.bare.replace(/\.git$/, '')}-work`;
    await mkdir(dirname(work), { recursive: true });
    await cp(join(EXAMPLE_APPS, app), work, { recursive: true });
    await git(work, 'init', '-q', '-b', APP_BRANCH);
    await git(work, 'config', 'user.name', 'app developer');
    await git(work, 'config', 'user.email', 'dev@example.com');
    const v1 = await commitVersion(work, 'v1', 'v1: first release');
    await git(work, 'tag', 'v1');
    const v2 = await commitVersion(work, 'v2', 'v2');
    await git(work, 'tag', 'v2');

    // Side commits from v2, reachable by their tags only, so `main` stays a healthy, buildable branch.
    await git(work, 'checkout', '-q', '-b', 'unhealthy');
    await edit(work, 'server.py', (text) => replaceOnce(text, 'HEALTHY = True', 'HEALTHY = False', 'server.py'));
    const v3 = await commitVersion(work, 'v3', 'v3: /healthz answers 500');
    await git(work, 'tag', 'v3');
    await git(work, 'checkout', '-q', APP_BRANCH);
    await git(work, 'checkout', '-q', '-b', 'broken');
    await writeFile(join(work, 'broken.py'), '# a half-finished edit: the build refuses it\ndef (:\n');
    await git(work, 'add', 'broken.py');
    const broken = await commitVersion(work, 'v2-broken', 'a change whose build fails');
    await git(work, 'tag', BROKEN_BUILD_TAG);
    await git(work, 'checkout', '-q', APP_BRANCH);
    await git(work, 'branch', '-q', '-D', 'unhealthy', 'broken');

    await mkdir(dirname(places.bare), { recursive: true });
    await execa('git', ['init', '-q', '--bare', '-b', APP_BRANCH, places.bare]);
    const repo = new AppRepo(app, places.bare, work, { v1, v2, v3, broken });
    await git(work, 'push', '-q', places.bare, `${APP_BRANCH}:refs/heads/${APP_BRANCH}`, '--tags');
    return repo;
  }

  /** Commits `version` into VERSION on `main` and pushes it; returns the commit. */
  async pushVersion(version: string, message = version): Promise<string> {
    const commit = await commitVersion(this.work, version, message);
    await git(this.work, 'push', '-q', this.bare, `${APP_BRANCH}:refs/heads/${APP_BRANCH}`);
    return commit;
  }

  /** Tags a commit and pushes the tag; returns the tag. */
  async pushTag(tag: string, commit: string): Promise<string> {
    await git(this.work, 'tag', tag, commit);
    await git(this.work, 'push', '-q', this.bare, `refs/tags/${tag}`);
    return tag;
  }

  /** The commit the bare repo's `main` points at. */
  head(): Promise<string> {
    return git(this.bare, 'rev-parse', `refs/heads/${APP_BRANCH}`);
  }
}

/** Creates both example apps' repos as `<parent>/<app>.git` (working clones beside them); returns them by name. */
export async function createExampleAppRepos(parent: string): Promise<Record<ExampleApp, AppRepo>> {
  return {
    lod: await AppRepo.create('lod', { bare: join(parent, 'lod.git') }),
    'model-gateway': await AppRepo.create('model-gateway', { bare: join(parent, 'model-gateway.git') }),
  };
}

/** The URL prefix the example desired state names its app repos by (hosts map it with apps.insteadOf). */
export const EXAMPLE_APP_URL_PREFIX = 'https://git.example.com/edge/';

let exampleAppsDir: Promise<string> | undefined;

/**
 * The `apply` arguments that map the example's app URLs to local repos of both example apps (`--app-instead-of`),
 * as the quick start does. The repos are made once per test process, in a temp dir removed at exit.
 */
export async function exampleAppArgs(): Promise<string[]> {
  return ['--app-instead-of', `${EXAMPLE_APP_URL_PREFIX}=${await exampleAppsRepos()}/`];
}

/** The same mapping as the host config's `apps` section, for `serve --config`. */
export async function exampleAppsConfig(): Promise<{ insteadOf: Record<string, string> }> {
  return { insteadOf: { [EXAMPLE_APP_URL_PREFIX]: `${await exampleAppsRepos()}/` } };
}

/** The folder holding `lod.git` and `model-gateway.git`, made on first use. */
function exampleAppsRepos(): Promise<string> {
  exampleAppsDir ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-apps-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await createExampleAppRepos(dir);
    return dir;
  })();
  return exampleAppsDir;
}

async function commitVersion(work: string, version: string, message: string): Promise<string> {
  await writeFile(join(work, 'VERSION'), `${version}\n`);
  await git(work, 'add', '-A');
  await git(work, 'commit', '-q', '-m', message);
  return git(work, 'rev-parse', 'HEAD');
}

async function edit(work: string, file: string, change: (text: string) => string): Promise<void> {
  const path = join(work, file);
  await writeFile(path, change(await readFile(path, 'utf8')));
}

function replaceOnce(text: string, from: string, to: string, file: string): string {
  if (!text.includes(from)) throw new Error(`cannot find "${from}" in ${file} of the example app`);
  return text.replace(from, to);
}
