/**
 * The values of the host config that reach git: the repo, the watched ref and the tag pattern. Each is checked
 * here, by git's own rules (`git check-ref-format`), before any git command sees it, so that no value can ever
 * become an option (`--upload-pack=…`, `--exec=…`) or a transport (`ext::…`). The repo's URL credentials are
 * split off so that git's argv, messages and logs never show them.
 */

/** How a repo is reached. */
export type RepoKind = 'http' | 'ssh' | 'file' | 'path';

/** A checked repo: what git is given, and the credentials that must travel outside argv. */
export interface RepoLocation {
  kind: RepoKind;
  /** The repo as git receives it: the URL without a password (and without its user when there was one). */
  url: string;
  /** The user and password of an http(s) URL's userinfo, sent as an HTTP Basic header through the environment. */
  credentials?: { user: string; password: string };
}

const URL_SCHEMES: Record<string, RepoKind> = { https: 'http', http: 'http', ssh: 'ssh', 'git+ssh': 'ssh', 'ssh+git': 'ssh', file: 'file' };
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;
const SSH_USER = /^[A-Za-z0-9_.][A-Za-z0-9_.+-]*$/;
const EXPECTED = 'an ssh or https URL (ssh://git@host/path, https://host/path), host:path (git@host:path), a file:// URL or an absolute path';

/** A host part fit for ssh and for git's URL parser: a DNS name or an IP literal, never an option. */
function hostProblem(host: string): string | undefined {
  if (host === '') return 'has no host';
  if (host.startsWith('[') && host.endsWith(']')) return /^\[[0-9A-Fa-f:.]+\]$/.test(host) ? undefined : `has a malformed host ${host}`;
  if (host.startsWith('-')) return `has a host beginning with "-" (${host}), which ssh would take as an option`;
  return HOST_NAME.test(host) ? undefined : `has a host that is not a DNS name or an IP address (${host})`;
}

function userProblem(user: string): string | undefined {
  if (user.startsWith('-')) return `has a user beginning with "-" (${user}), which ssh would take as an option`;
  return SSH_USER.test(user) ? undefined : `has a user with characters ssh does not take (${user})`;
}

/** Drops the userinfo (`user:password@`) of a URL, leaving the rest of the text as it was. */
export function withoutUserinfo(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1');
}

function parseUrl(repo: string, scheme: string): RepoLocation {
  const kind = URL_SCHEMES[scheme];
  if (!kind) throw new Error(`uses the ${scheme}:// transport, which is not allowed: use ${EXPECTED}`);
  let url: URL;
  try {
    url = new URL(repo);
  } catch {
    throw new Error(`is not a valid URL: use ${EXPECTED}`);
  }
  if (/\s/.test(repo)) throw new Error('contains whitespace');
  const authority = /^[^:]+:\/\/([^/?#]*)/.exec(repo)?.[1] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const host = hostPort.startsWith('[') ? hostPort.slice(0, hostPort.indexOf(']') + 1) : hostPort.replace(/:\d*$/, '');
  if (kind === 'file') {
    if (host !== '' && host !== 'localhost') throw new Error(`is a file:// URL with a host (${host}): use file:///absolute/path`);
    if (authority.includes('@')) throw new Error('is a file:// URL with a user');
    if (!url.pathname.startsWith('/') || url.pathname === '/') throw new Error('is a file:// URL without a path');
    return { kind, url: repo };
  }
  const problem = hostProblem(host);
  if (problem) throw new Error(problem);
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  if (kind === 'ssh') {
    if (password || authority.slice(0, authority.lastIndexOf('@')).includes(':')) {
      throw new Error('is an ssh URL with a password: ssh URLs take a deploy key (auth.sshKeyFile), never a password');
    }
    const bad = user ? userProblem(user) : undefined;
    if (bad) throw new Error(bad);
    if (url.pathname.replace(/^\//, '').startsWith('-')) throw new Error('has a path beginning with "-"');
    return { kind, url: repo };
  }
  if (!password) return { kind, url: repo };
  return { kind, url: withoutUserinfo(repo), credentials: { user, password } };
}

function parseScpLike(repo: string): RepoLocation | undefined {
  // git's rule: host:path is scp-like when a colon comes before any slash (and it is not a URL).
  const match = /^(?:([^@/]*)@)?(\[[^\]/]*\]|[^:/[\]]+):(.*)$/.exec(repo);
  if (!match) return undefined;
  const [, user, host, path] = match as unknown as [string, string | undefined, string, string];
  if (user !== undefined) {
    const bad = userProblem(user);
    if (bad) throw new Error(bad);
  }
  const problem = hostProblem(host);
  if (problem) throw new Error(problem);
  if (path === '') throw new Error('is host:path without a path');
  if (path.startsWith('-')) throw new Error('has a path beginning with "-"');
  return { kind: 'ssh', url: repo };
}

/** Checks a repo value and says how git reaches it; throws an Error whose message completes "repo …". */
export function parseRepo(repo: string): RepoLocation {
  if (repo === '') throw new Error('is empty');
  if (CONTROL.test(repo)) throw new Error('contains a control character');
  if (repo.startsWith('-')) throw new Error('begins with "-", and git would take it as an option');
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(repo)) throw new Error(`names a git remote helper (${repo.slice(0, repo.indexOf('::') + 2)}), which is not allowed: use ${EXPECTED}`);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(repo)?.[1];
  if (scheme) return parseUrl(repo, scheme.toLowerCase());
  if (repo.startsWith('/')) return { kind: 'path', url: repo };
  const scp = parseScpLike(repo);
  if (scp) return scp;
  throw new Error(`is neither a URL nor an absolute path: use ${EXPECTED}`);
}

/** Why `repo` is refused, or undefined when git may be given it. */
export function repoProblem(repo: string): string | undefined {
  try {
    parseRepo(repo);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Why `name` is not a valid ref name by `git check-ref-format`'s rules (plus: never beginning with "-"), or
 * undefined. `glob` allows the characters of a tag pattern (`*`, `?`, `[…]`).
 */
export function refNameProblem(name: string, glob = false): string | undefined {
  if (name === '') return 'is empty';
  if (name.startsWith('-')) return 'begins with "-", and git would take it as an option';
  if (CONTROL.test(name) || /\s/.test(name)) return 'contains whitespace or a control character';
  const forbidden = glob ? /[~^:\\]/ : /[~^:?*[\\]/;
  const char = forbidden.exec(name)?.[0];
  if (char !== undefined) return `contains "${char}", which a git ref name cannot`;
  if (name.includes('..')) return 'contains "..", which a git ref name cannot';
  if (name.includes('@{')) return 'contains "@{", which a git ref name cannot';
  if (name === '@') return 'is "@", which git reads as HEAD';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'has an empty path component (a leading, trailing or double "/")';
  if (name.endsWith('.')) return 'ends with "."';
  for (const component of name.split('/')) {
    if (component.startsWith('.')) return `has a component beginning with "." (${component})`;
    if (component.endsWith('.lock')) return `has a component ending with ".lock" (${component})`;
  }
  return undefined;
}

/** A commit id written out in full (sha1 or sha256). */
export function isCommitId(ref: string): boolean {
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(ref);
}

/**
 * The full name a `ref` setting stands for: `HEAD` and a full commit id as they are, a full `refs/…` name as it
 * is, and a short name as a branch (`release` → `refs/heads/release`): a tag named like the branch never replaces
 * it. A tag is written in full (`refs/tags/v1`). Throws an Error whose message completes "ref …".
 */
export function fullRefName(ref: string): string {
  if (ref === 'HEAD' || isCommitId(ref)) return ref;
  const full = ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
  const problem = refNameProblem(ref) ?? refNameProblem(full);
  if (problem) throw new Error(problem);
  if (full.split('/').length < 3) throw new Error('names no branch or tag under refs/');
  return full;
}

/** Why a `ref` setting is refused, or undefined. */
export function refProblem(ref: string): string | undefined {
  try {
    fullRefName(ref);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A tag pattern (`prod-*` or `refs/tags/prod-*`) in its short form; throws an Error whose message completes "tag pattern …". */
export function shortTagPattern(pattern: string): string {
  const short = pattern.startsWith('refs/tags/') ? pattern.slice('refs/tags/'.length) : pattern;
  const problem = refNameProblem(pattern, true) ?? refNameProblem(short, true);
  if (problem) throw new Error(problem);
  return short;
}

/** Why a `tagPattern` setting is refused, or undefined. */
export function tagPatternProblem(pattern: string): string | undefined {
  try {
    shortTagPattern(pattern);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
