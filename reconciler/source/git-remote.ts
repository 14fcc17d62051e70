/**
 * The network side of the git source: how git reaches a remote (environment, ssh command, token header, deadline)
 * and the two ways of fetching the watched revision into the mirror: one ref, or the newest tag of a pattern.
 */
import { access, constants, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { fullRefName, parseRepo, type RepoLocation } from '../config/git-names.js';
import { EdgeError } from '../errors.js';
import { describeRepo, fetchError, scrubbedCause } from './git-errors.js';
import { newestByDate, normaliseTagPattern, parseLsRemoteTags, tagCandidates } from './git-refs.js';

/** Credentials for a remote; files are read at each fetch, their content never reaches argv, logs or errors. */
export interface SourceAuth {
  /** An SSH private key (a deploy key) for ssh:// and `host:path` URLs. */
  sshKeyFile?: string;
  /** The known_hosts file the server's host key must be in (default: ssh's own); unknown hosts are refused. */
  knownHostsFile?: string;
  /** A file holding a token for https URLs, sent as an HTTP Basic `Authorization` header. */
  tokenFile?: string;
  /** The user name paired with the token (default `x-access-token`, which GitHub, Gitea and GitLab accept). */
  tokenUser?: string;
}

/** What reaching a remote needs. */
export interface RemoteOptions {
  /** A URL or a bare repo. */
  repo: string;
  auth?: SourceAuth;
  /** Where the remote is mirrored (`<state>/repo.git`). */
  mirrorDir: string;
  /** The deadline of each network operation (ls-remote, fetch); default 60 s. */
  timeoutMs?: number;
  /** Cancels a network operation in flight. */
  signal?: AbortSignal;
}

/** The default deadline of one network operation. */
export const DEFAULT_FETCH_TIMEOUT_MS = 60_000;

/** How to reach a remote: the environment of every network git command and the secrets to keep out of errors. */
export interface RemoteAccess {
  /** The repo as configured, for messages (describeRepo drops its userinfo). */
  repo: string;
  /** The repo as git is given it: checked, never an option, without a password. */
  url: string;
  env: Record<string, string>;
  secrets: string[];
  timeoutMs: number;
  signal?: AbortSignal;
  mirrorDir: string;
}

/** The parent environment a network git command keeps: paths, proxies and CA bundles, no GIT_* leftovers. */
const PASSTHROUGH_ENV = `PATH HOME USER LOGNAME TMPDIR SSH_AUTH_SOCK http_proxy https_proxy no_proxy all_proxy HTTP_PROXY
  HTTPS_PROXY NO_PROXY ALL_PROXY GIT_SSL_CAINFO GIT_SSL_CAPATH SSL_CERT_FILE SSL_CERT_DIR`.split(/\s+/);

/** A shell word for GIT_SSH_COMMAND (git runs it through sh). */
function shellWord(word: string): string {
  return /^[\w./=:@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The ssh command line git uses: never prompts, never accepts an unknown host key, gives up on a dead peer. */
export function sshCommand(auth: SourceAuth = {}, timeoutMs = DEFAULT_FETCH_TIMEOUT_MS): string {
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const words = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `ConnectTimeout=${seconds}`, '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=3'];
  if (auth.sshKeyFile) words.push('-i', auth.sshKeyFile, '-o', 'IdentitiesOnly=yes');
  if (auth.knownHostsFile) words.push('-o', `UserKnownHostsFile=${auth.knownHostsFile}`);
  return words.map(shellWord).join(' ');
}

async function readable(file: string, what: string): Promise<void> {
  await access(file, constants.R_OK).catch((error: NodeJS.ErrnoException) => {
    throw new EdgeError('FETCH_FAILED', `cannot read the ${what} ${file} (${error.code ?? 'error'})`, { stage: 'fetch', retry: 'transient' });
  });
}

/** Checks the repo before git sees it (see config/git-names.ts); a bad one is a config mistake. */
export function locateRepo(repo: string): RepoLocation {
  try {
    return parseRepo(repo);
  } catch (error) {
    throw new EdgeError('FETCH_FAILED', `repo ${JSON.stringify(describeRepo(repo))} ${(error as Error).message}`, { stage: 'fetch', retry: 'invalid' });
  }
}

/** The HTTP Basic header git sends to the repo's origin, passed through the environment (never argv or the URL). */
function basicAuthEnv(url: string, user: string, password: string): { env: Record<string, string>; basic: string } {
  const basic = Buffer.from(`${user}:${password}`).toString('base64');
  return {
    basic,
    env: {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: `http.${new URL(url).origin}/.extraHeader`,
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    },
  };
}

/** The environment, secrets and deadline of every network git command of one fetch. */
export async function remoteAccess(options: RemoteOptions): Promise<RemoteAccess> {
  const location = locateRepo(options.repo);
  const auth = options.auth ?? {};
  const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const env: Record<string, string> = {};
  for (const name of PASSTHROUGH_ENV) if (process.env[name] !== undefined) env[name] = process.env[name] as string;
  Object.assign(env, {
    LC_ALL: 'C',
    GIT_TERMINAL_PROMPT: '0',
    // A stalled HTTP transfer ends on its own too, even if the helper outlives a killed git.
    GIT_HTTP_LOW_SPEED_LIMIT: '1',
    GIT_HTTP_LOW_SPEED_TIME: String(Math.max(1, Math.ceil(timeoutMs / 1000))),
    GIT_SSH_COMMAND: sshCommand(auth, timeoutMs),
  });
  if (auth.sshKeyFile) await readable(auth.sshKeyFile, 'ssh key file');
  if (auth.knownHostsFile) await readable(auth.knownHostsFile, 'known_hosts file');
  const secrets: string[] = [];
  if (auth.tokenFile) {
    if (location.kind !== 'http') {
      throw new EdgeError('FETCH_FAILED', `auth.tokenFile is for http(s) URLs, and the repo is ${describeRepo(options.repo)}`, { stage: 'fetch', retry: 'invalid' });
    }
    if (location.credentials) {
      throw new EdgeError('FETCH_FAILED', `the repo ${describeRepo(options.repo)} carries a password in its URL and auth.tokenFile is set: keep the token in the token file only`, { stage: 'fetch', retry: 'invalid' });
    }
    await readable(auth.tokenFile, 'token file');
    const token = (await readFile(auth.tokenFile, 'utf8')).trim();
    if (!token) throw new EdgeError('FETCH_FAILED', `the token file ${auth.tokenFile} is empty`, { stage: 'fetch', retry: 'transient' });
    // Through the environment, not `-c`: argv is world-readable in /proc and shows up in error messages.
    const header = basicAuthEnv(location.url, auth.tokenUser ?? 'x-access-token', token);
    Object.assign(env, header.env);
    secrets.push(token, header.basic);
  } else if (location.credentials) {
    // A password in the URL travels like a token: as a header through the environment, never in git's argv.
    const { user, password } = location.credentials;
    const header = basicAuthEnv(location.url, user, password);
    Object.assign(env, header.env);
    secrets.push(password, encodeURIComponent(password), header.basic);
  }
  return { repo: options.repo, url: location.url, env, secrets, timeoutMs, signal: options.signal, mirrorDir: options.mirrorDir };
}

/** Runs one network git command in the mirror under the deadline; a timeout is FETCH_TIMEOUT. */
export async function overNetwork(remote: RemoteAccess, what: string, args: string[]): Promise<string> {
  const deadline = AbortSignal.timeout(remote.timeoutMs);
  const abort = remote.signal ? AbortSignal.any([deadline, remote.signal]) : deadline;
  const git: SimpleGit = simpleGit({
    baseDir: remote.mirrorDir,
    abort,
    unsafe: { allowUnsafeSshCommand: true, allowUnsafeConfigEnvCount: true },
  }).env(remote.env);
  try {
    return await git.raw(args);
  } catch (error) {
    if (deadline.aborted) {
      throw new EdgeError('FETCH_TIMEOUT', `${what} from ${describeRepo(remote.repo)} did not finish within ${remote.timeoutMs} ms`, {
        stage: 'fetch',
        retry: 'transient',
        cause: scrubbedCause(error, remote.secrets),
      });
    }
    if (remote.signal?.aborted) throw fetchError(`${what} from ${describeRepo(remote.repo)} was cancelled`, error, 'transient', remote.secrets);
    throw fetchError(`cannot ${what} from ${describeRepo(remote.repo)}`, error, 'transient', remote.secrets);
  }
}

/** Creates the bare mirror the first time. */
export async function ensureMirror(mirrorDir: string): Promise<void> {
  if ((await stat(join(mirrorDir, 'objects')).catch(() => undefined))?.isDirectory()) return;
  await mkdir(mirrorDir, { recursive: true, mode: 0o700 });
  await simpleGit(mirrorDir).init(true);
}

/**
 * Fetches one ref into `refs/edge/watched` (no tags, no other branch) by its full name, so that a tag named like
 * the watched branch never stands in for it; returns the ref's full name.
 */
export async function fetchRef(remote: RemoteAccess, asked: string): Promise<{ ref: string; tag?: string }> {
  let full: string;
  try {
    full = fullRefName(asked);
  } catch (error) {
    throw new EdgeError('FETCH_FAILED', `ref ${JSON.stringify(asked)} ${(error as Error).message}`, { stage: 'fetch', retry: 'invalid' });
  }
  await overNetwork(remote, `fetch ${full}`, ['fetch', '--quiet', '--no-tags', '--force', '--no-recurse-submodules', '--', remote.url, `+${full}:refs/edge/watched`]);
  const ref = full.startsWith('refs/') ? full : resolvedRef(await readFile(`${remote.mirrorDir}/FETCH_HEAD`, 'utf8').catch(() => ''), full);
  if (ref.startsWith('refs/tags/')) {
    // Keep the tag under its own name too, so that its signature can be verified.
    await simpleGit(remote.mirrorDir).raw(['update-ref', ref, 'refs/edge/watched']);
  }
  return { ref, ...tagOf(ref) };
}

/** The full name of the ref a fetch resolved, from FETCH_HEAD (`branch 'release' of …`, `tag 'v1' of …`). */
export function resolvedRef(fetchHead: string, asked: string): string {
  const line = fetchHead.split('\n')[0] ?? '';
  const description = line.split('\t')[2] ?? '';
  const named = /^(branch|tag|remote-tracking branch) '(.+?)' of /.exec(description);
  if (named) return `${named[1] === 'branch' ? 'refs/heads/' : named[1] === 'tag' ? 'refs/tags/' : 'refs/remotes/'}${named[2]}`;
  const quoted = /^'(.+?)' of /.exec(description);
  if (quoted) return quoted[1] as string;
  return asked;
}

/** Lists the tags matching the pattern, fetches the newest (or the tied candidates) and returns it. */
export async function fetchNewestTag(remote: RemoteAccess, pattern: string): Promise<{ ref: string; tag: string }> {
  let short: string;
  try {
    short = normaliseTagPattern(pattern);
  } catch (error) {
    throw new EdgeError('FETCH_FAILED', (error as Error).message, { stage: 'fetch', retry: 'invalid' });
  }
  const listed = await overNetwork(remote, `list tags ${short}`, ['ls-remote', '--tags', '--', remote.url, `refs/tags/${short}`]);
  const choice = tagCandidates(parseLsRemoteTags(listed), short);
  if (choice.candidates.length === 0) {
    throw new EdgeError('NO_MATCHING_TAG', `no tag of ${describeRepo(remote.repo)} matches ${short}; waiting for one`, { stage: 'fetch', retry: 'refused' });
  }
  const names = choice.candidates.map((tag) => tag.name);
  await overNetwork(remote, `fetch ${names.length === 1 ? `tag ${names[0]}` : `${names.length} tags matching ${short}`}`, [
    'fetch', '--quiet', '--no-tags', '--force', '--no-recurse-submodules', '--', remote.url,
    ...names.map((name) => `+refs/tags/${name}:refs/tags/${name}`),
  ]);
  let tag = names[0] as string;
  if (names.length > 1) {
    const dates = await simpleGit(remote.mirrorDir).raw([
      'for-each-ref', '--format=%(refname:strip=2)%09%(creatordate:unix)', ...names.map((name) => `refs/tags/${name}`),
    ]);
    const dated = dates.split('\n').filter(Boolean).map((line) => {
      const [name, date] = line.split('\t');
      return { name: name as string, date: Number(date) };
    });
    tag = newestByDate(dated) ?? tag;
  }
  await simpleGit(remote.mirrorDir).raw(['update-ref', 'refs/edge/watched', `refs/tags/${tag}`]);
  return { ref: `refs/tags/${tag}`, tag };
}

/** The tag name of a full ref, when it is a tag. */
export function tagOf(ref: string): { tag?: string } {
  return ref.startsWith('refs/tags/') ? { tag: ref.slice('refs/tags/'.length) } : {};
}
