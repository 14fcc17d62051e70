/**
 * The git source: resolves the revision to apply and exports its tree into a clean staging dir. A remote (URL
 * or bare repo) is mirrored into the state dir and only the watched ref is fetched: a branch (`release`) or the
 * newest tag matching a pattern (`prod-*`, see git-refs.ts); every network operation has a deadline and runs
 * with the deploy key or token of `auth`. A local checkout exports its committed tree (uncommitted edits never go
 * live); a plain directory (no git) is copied and named by a hash of its content.
 */
import { execa } from 'execa';
import { access, constants, cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { EdgeError } from './errors.js';
import { newestByDate, normaliseTagPattern, parseLsRemoteTags, tagCandidates } from './git-refs.js';
import { sha256 } from './inventory.js';

/** What kind of source a revision came from; trust checks apply to `remote` only. */
export type SourceKind = 'remote' | 'checkout' | 'directory';

/** An exported revision. */
export interface ExportedRevision {
  /** False when `skipExport` said the tree is not needed: `dir` is then empty. */
  exported: boolean;
  /** The commit id, or `tree:<sha256>` for a plain directory. */
  revision: string;
  /** The exported tree (the desired-state repo root). */
  dir: string;
  kind: SourceKind;
  /** The resolved ref (`refs/heads/release`, `refs/tags/prod-1.2.3`, `HEAD`); none for a plain directory. */
  ref?: string;
  /** The tag name, when the ref is a tag. */
  tag?: string;
  /** The repository holding the revision (the mirror, or the checkout); none for a plain directory. */
  gitDir?: string;
  /** The tree read straight from git into memory (not for a plain directory, which is read from `dir`). */
  files?: TreeFiles;
  /** Writes the tree into `dir`, for what needs it on disk (hooks); a no-op when it is there already. */
  materialize(): Promise<void>;
}

/** A file of a tree in memory: its bytes and git mode (`100644`, `100755`, `120000` for a symlink). */
export interface TreeFile {
  content: Buffer;
  mode: string;
}

/** A tree in memory, by path relative to its root. */
export type TreeFiles = Map<string, TreeFile>;

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

/** Where to get the desired state from. */
export interface SourceOptions {
  /** A URL, a bare repo, a checkout, or a plain directory. */
  repo: string;
  /** The branch, tag or commit to apply (remote and checkout; default: HEAD). */
  ref?: string;
  /** Apply the newest tag matching this glob (`prod-*`); remote only, exclusive with `ref`. */
  tagPattern?: string;
  auth?: SourceAuth;
  /** Where a remote is mirrored (`<state>/repo.git`). */
  mirrorDir: string;
  /** Parent of the staging dir the tree is exported into. */
  stagingParent: string;
  /** The deadline of each network operation (ls-remote, fetch); default 60 s. */
  timeoutMs?: number;
  /** Cancels a network operation in flight. */
  signal?: AbortSignal;
  /** Asked once the revision is resolved: true skips the export (a live, unchanged revision needs no tree). */
  skipExport?: (revision: string) => Promise<boolean>;
}

/** The default deadline of one network operation. */
export const DEFAULT_FETCH_TIMEOUT_MS = 60_000;

function fetchError(message: string, cause: unknown, retry: 'transient' | 'refused' | 'invalid' = 'transient', secrets: string[] = []): EdgeError {
  const detail = cause instanceof Error ? cause.message.split('\n').filter(Boolean).slice(-2).join(' | ') : String(cause);
  return new EdgeError('FETCH_FAILED', scrub(`${message}: ${detail}`, secrets), { stage: 'fetch', retry, cause: scrubbedCause(cause, secrets) });
}

function scrub(text: string, secrets: string[]): string {
  let clean = text.replace(/(\w+:\/\/)[^/@\s]+@/g, '$1');
  for (const secret of secrets) if (secret) clean = clean.split(secret).join('[redacted]');
  return clean;
}

function scrubbedCause(cause: unknown, secrets: string[]): unknown {
  return secrets.length > 0 && cause instanceof Error ? new Error(scrub(cause.message, secrets)) : cause;
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

async function exportInto(options: SourceOptions, dir: string): Promise<ExportedRevision> {
  if (await isDir(options.repo)) {
    const git = simpleGit(options.repo);
    const inside = await git.revparse(['--is-inside-work-tree']).catch(() => 'false');
    const bare = inside.trim() === 'true' ? 'false' : await git.revparse(['--is-bare-repository']).catch(() => 'false');
    if (inside.trim() === 'true' || bare.trim() !== 'true') {
      if (options.tagPattern !== undefined) {
        throw new EdgeError('FETCH_FAILED', `a tag pattern (${options.tagPattern}) needs a remote or bare repo, and ${options.repo} is a working directory`, {
          stage: 'fetch',
          retry: 'invalid',
        });
      }
      return inside.trim() === 'true' ? exportCheckout(options, dir) : exportPlainDir(options.repo, dir);
    }
  }
  return exportRemote(options, dir);
}

/** True when the caller needs no tree for this revision (it is live and unchanged): the export is skipped. */
async function skipped(options: SourceOptions, revision: string): Promise<boolean> {
  return (await options.skipExport?.(revision)) === true;
}

async function exportCheckout(options: SourceOptions, dir: string): Promise<ExportedRevision> {
  const git = simpleGit(options.repo);
  const asked = options.ref ?? 'HEAD';
  const prefix = (await git.revparse(['--show-prefix'])).trim();
  const revision = (await git.revparse([`${asked}^{commit}`]).catch((error) => {
    throw fetchError(`cannot resolve ${asked} in ${options.repo}`, error, 'refused');
  })).trim();
  const ref = (await git.revparse(['--symbolic-full-name', asked]).catch(() => '')).trim() || asked;
  const top = (await git.revparse(['--show-toplevel'])).trim();
  const treeish = prefix ? `${revision}:${prefix.replace(/\/$/, '')}` : revision;
  const skip = await skipped(options, revision);
  const files = skip ? undefined : await readTree(top, treeish);
  return { revision, dir, kind: 'checkout', ref, ...tagOf(ref), gitDir: top, exported: !skip, files, materialize: once(() => archive(top, treeish, dir)) };
}

function tagOf(ref: string): { tag?: string } {
  return ref.startsWith('refs/tags/') ? { tag: ref.slice('refs/tags/'.length) } : {};
}

/** How to reach a remote: the environment of every network git command and the secrets to keep out of errors. */
interface RemoteAccess {
  repo: string;
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

async function remoteAccess(options: SourceOptions): Promise<RemoteAccess> {
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
    if (!/^https?:\/\//i.test(options.repo)) {
      throw new EdgeError('FETCH_FAILED', `auth.tokenFile is for http(s) URLs, and the repo is ${describeRepo(options.repo)}`, { stage: 'fetch', retry: 'invalid' });
    }
    await readable(auth.tokenFile, 'token file');
    const token = (await readFile(auth.tokenFile, 'utf8')).trim();
    if (!token) throw new EdgeError('FETCH_FAILED', `the token file ${auth.tokenFile} is empty`, { stage: 'fetch', retry: 'transient' });
    const basic = Buffer.from(`${auth.tokenUser ?? 'x-access-token'}:${token}`).toString('base64');
    // Through the environment, not `-c`: argv is world-readable in /proc and shows up in error messages.
    Object.assign(env, {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: `http.${new URL(options.repo).origin}/.extraHeader`,
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    });
    secrets.push(token, basic);
  }
  return { repo: options.repo, env, secrets, timeoutMs, signal: options.signal, mirrorDir: options.mirrorDir };
}

/** A repo URL fit for messages: credentials in the URL are dropped. */
function describeRepo(repo: string): string {
  return scrub(repo, []);
}

/** Runs one network git command in the mirror under the deadline; a timeout is FETCH_TIMEOUT. */
async function overNetwork(remote: RemoteAccess, what: string, args: string[]): Promise<string> {
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

async function ensureMirror(mirrorDir: string): Promise<void> {
  if (await isDir(join(mirrorDir, 'objects'))) return;
  await mkdir(mirrorDir, { recursive: true, mode: 0o700 });
  await simpleGit(mirrorDir).init(true);
}

async function exportRemote(options: SourceOptions, dir: string): Promise<ExportedRevision> {
  const remote = await remoteAccess(options);
  await ensureMirror(options.mirrorDir).catch((error) => {
    throw fetchError(`cannot create the mirror ${options.mirrorDir}`, error);
  });
  const { ref, tag } = options.tagPattern !== undefined ? await fetchNewestTag(remote, options.tagPattern) : await fetchRef(remote, options.ref ?? 'HEAD');
  const revision = (await simpleGit(options.mirrorDir).revparse(['refs/edge/watched^{commit}']).catch((error) => {
    throw fetchError(`${ref} from ${describeRepo(options.repo)} is not a commit`, error, 'refused');
  })).trim();
  const skip = await skipped(options, revision);
  const files = skip ? undefined : await readTree(options.mirrorDir, revision);
  return {
    revision,
    dir,
    kind: 'remote',
    ref,
    ...(tag ? { tag } : {}),
    gitDir: options.mirrorDir,
    exported: !skip,
    files,
    materialize: once(() => archive(options.mirrorDir, revision, dir)),
  };
}

/** Fetches one ref into `refs/edge/watched` (no tags, no other branch); returns the ref's full name. */
async function fetchRef(remote: RemoteAccess, asked: string): Promise<{ ref: string; tag?: string }> {
  await overNetwork(remote, `fetch ${asked}`, ['fetch', '--quiet', '--no-tags', '--force', '--no-recurse-submodules', remote.repo, `+${asked}:refs/edge/watched`]);
  const ref = resolvedRef(await readFile(`${remote.mirrorDir}/FETCH_HEAD`, 'utf8').catch(() => ''), asked);
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
async function fetchNewestTag(remote: RemoteAccess, pattern: string): Promise<{ ref: string; tag: string }> {
  let short: string;
  try {
    short = normaliseTagPattern(pattern);
  } catch (error) {
    throw new EdgeError('FETCH_FAILED', (error as Error).message, { stage: 'fetch', retry: 'invalid' });
  }
  const listed = await overNetwork(remote, `list tags ${short}`, ['ls-remote', '--tags', remote.repo, `refs/tags/${short}`]);
  const choice = tagCandidates(parseLsRemoteTags(listed), short);
  if (choice.candidates.length === 0) {
    throw new EdgeError('NO_MATCHING_TAG', `no tag of ${describeRepo(remote.repo)} matches ${short}; waiting for one`, { stage: 'fetch', retry: 'refused' });
  }
  const names = choice.candidates.map((tag) => tag.name);
  await overNetwork(remote, `fetch ${names.length === 1 ? `tag ${names[0]}` : `${names.length} tags matching ${short}`}`, [
    'fetch', '--quiet', '--no-tags', '--force', '--no-recurse-submodules', remote.repo,
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

/** Runs `fn` the first time only; later calls share its promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

/**
 * Reads a whole tree into memory with two git processes (`ls-tree` and one `cat-file --batch`): much cheaper than
 * writing hundreds of small files to disk only to read them back.
 */
export async function readTree(gitDir: string, treeish: string): Promise<TreeFiles> {
  let entries: { mode: string; sha: string; path: string }[];
  try {
    const listed = await execa('git', ['-C', gitDir, 'ls-tree', '-r', '-z', '--full-tree', treeish], { encoding: 'utf8' });
    entries = listed.stdout
      .split('\0')
      .filter(Boolean)
      .map((line) => {
        const tab = line.indexOf('\t');
        const [mode = '', type = '', sha = ''] = line.slice(0, tab).split(' ');
        return { mode, type, sha, path: line.slice(tab + 1) };
      })
      .filter((entry) => entry.type === 'blob');
  } catch (error) {
    throw fetchError(`cannot list ${treeish}`, error);
  }
  const files: TreeFiles = new Map();
  if (entries.length === 0) return files;
  let out: Buffer;
  try {
    const batch = await execa('git', ['-C', gitDir, 'cat-file', '--batch'], {
      input: `${entries.map((entry) => entry.sha).join('\n')}\n`,
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
    });
    out = Buffer.from(batch.stdout);
  } catch (error) {
    throw fetchError(`cannot read the blobs of ${treeish}`, error);
  }
  let offset = 0;
  for (const entry of entries) {
    const newline = out.indexOf(0x0a, offset);
    const size = Number(out.subarray(offset, newline).toString('latin1').split(' ')[2]);
    const start = newline + 1;
    files.set(entry.path, { content: out.subarray(start, start + size), mode: entry.mode });
    offset = start + size + 1;
  }
  return files;
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
  return { revision: `tree:${sha256(hash.join('\n'))}`, dir, kind: 'directory', exported: true, materialize: async () => undefined };
}
