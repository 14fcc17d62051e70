/**
 * Where an app's code comes from: the app repo URL mapped by the host config (git's url.<base>.insteadOf), the
 * credentials for it (per URL prefix, the same ways as the desired-state repo's own: a token file or an ssh key),
 * and the one bare mirror per app in the state dir (`<state>/apps/<app>.git`) into which only what is needed is
 * fetched: the pinned commit (nothing when the mirror has it), the tag, or the followed branch.
 */
import { execa } from 'execa';
import { EdgeError } from '../errors.js';
import { describeRepo, scrub } from './git-errors.js';
import { ensureMirror, fetchRef, overNetwork, remoteAccess, type RemoteAccess, type SourceAuth } from './git-remote.js';

/** The host config's `apps` section: URL rewrites and credentials for app repos. */
export interface AppSourceConfig {
  /** URL prefix → what replaces it (the longest matching prefix wins, as in git). */
  insteadOf: Record<string, string>;
  /** Credentials for app repos whose URL (after insteadOf) starts with `prefix`; the longest match wins. */
  auth: ({ prefix: string } & SourceAuth)[];
  /** The deadline of one network operation on an app repo (default 60 s). */
  timeoutMs?: number;
}

/** What to resolve: one of a pinned commit, a tag, a followed branch. */
export interface AppRevisionSpec {
  app: string;
  repo: string;
  rev?: string;
  tag?: string;
  follow?: string;
}

/** A resolved app revision. */
export interface ResolvedApp {
  sha: string;
  /** The tag or branch it came from. */
  ref?: string;
}

/** The URL git is given for `repo`: the longest matching insteadOf prefix replaced. */
export function rewriteAppUrl(repo: string, insteadOf: Record<string, string> = {}): string {
  const prefix = Object.keys(insteadOf)
    .filter((candidate) => candidate !== '' && repo.startsWith(candidate))
    .sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? repo : `${insteadOf[prefix]}${repo.slice(prefix.length)}`;
}

/** The credentials for a (rewritten) URL: the entry with the longest matching prefix. */
export function appAuthFor(url: string, auth: AppSourceConfig['auth'] = []): SourceAuth | undefined {
  const entry = auth.filter((candidate) => url.startsWith(candidate.prefix)).sort((a, b) => b.prefix.length - a.prefix.length)[0];
  if (!entry) return undefined;
  const credentials: SourceAuth = {};
  for (const key of ['sshKeyFile', 'knownHostsFile', 'tokenFile', 'tokenUser'] as const) if (entry[key] !== undefined) credentials[key] = entry[key];
  return credentials;
}

/** True when the mirror holds `sha` as a commit. */
export async function hasCommit(mirrorDir: string, sha: string): Promise<boolean> {
  const result = await execa('git', ['-C', mirrorDir, 'cat-file', '-e', `${sha}^{commit}`], { reject: false });
  return result.exitCode === 0;
}

async function revParse(mirrorDir: string, ref: string): Promise<string> {
  const { stdout } = await execa('git', ['-C', mirrorDir, 'rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`]);
  return stdout.trim();
}

/**
 * Resolves an app's revision into its mirror: a pinned commit already there costs no network; otherwise the commit
 * is fetched by its id (servers that refuse that get a fetch of their branches and tags), a tag or a branch by its
 * full name. Failures are APP_FETCH_FAILED (transient: the repo may be unreachable) naming the app and repo, or
 * APP_REV_MISSING (invalid) when the repo does not have the pinned commit.
 */
export async function resolveAppRevision(
  spec: AppRevisionSpec,
  mirrorDir: string,
  config: AppSourceConfig | undefined,
  signal?: AbortSignal,
): Promise<ResolvedApp> {
  await ensureMirror(mirrorDir);
  if (spec.rev && (await hasCommit(mirrorDir, spec.rev))) return { sha: spec.rev };
  const url = rewriteAppUrl(spec.repo, config?.insteadOf);
  const what = `app ${spec.app}`;
  let remote: RemoteAccess;
  try {
    remote = await remoteAccess({ repo: url, auth: appAuthFor(url, config?.auth), mirrorDir, timeoutMs: config?.timeoutMs, signal });
  } catch (error) {
    throw appFetchError(what, spec.repo, error);
  }
  try {
    if (spec.rev) {
      const rev = spec.rev;
      await overNetwork(remote, `fetch ${rev.slice(0, 12)}`, ['fetch', '--quiet', '--no-tags', '--no-recurse-submodules', '--', remote.url, rev]).catch(() =>
        // Servers that refuse a commit by id still serve it through their branches and tags.
        overNetwork(remote, 'fetch branches and tags', ['fetch', '--quiet', '--force', '--no-recurse-submodules', '--', remote.url, '+refs/heads/*:refs/edge/heads/*', '+refs/tags/*:refs/tags/*']),
      );
      if (!(await hasCommit(mirrorDir, rev))) {
        throw new EdgeError('APP_REV_MISSING', `${what}: ${describeRepo(spec.repo)} has no commit ${rev}`, { stage: 'prepare', retry: 'invalid' });
      }
      return { sha: rev };
    }
    const ref = spec.tag ? `refs/tags/${spec.tag}` : `refs/heads/${spec.follow ?? ''}`;
    await fetchRef(remote, ref);
    return { sha: await revParse(mirrorDir, 'refs/edge/watched'), ref: spec.tag ?? spec.follow };
  } catch (error) {
    if (error instanceof EdgeError && error.stage === 'prepare') throw error;
    throw appFetchError(what, spec.repo, error, remote.secrets);
  }
}

function appFetchError(what: string, repo: string, error: unknown, secrets: string[] = []): EdgeError {
  const edge = error instanceof EdgeError ? error : undefined;
  const message = scrub(error instanceof Error ? error.message : String(error), secrets);
  return new EdgeError(edge?.code === 'FETCH_TIMEOUT' ? 'APP_FETCH_TIMEOUT' : 'APP_FETCH_FAILED', `${what}: cannot fetch from ${describeRepo(repo)}: ${message}`, {
    stage: 'prepare',
    retry: edge?.retry === 'invalid' ? 'invalid' : 'transient',
    cause: edge ?? error,
  });
}
