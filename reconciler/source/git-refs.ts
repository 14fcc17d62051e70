/**
 * Choosing the tag a tag-pattern source applies (`prod-*`): which advertised tags match, which carry a version,
 * and which one is the newest. Pure: git.ts lists the tags (`git ls-remote`) and fetches the candidates.
 *
 * The rule (docs/git-source.md): when at least one matching tag carries a version in the part its `*` matched
 * (`1.2.10`, `v1.2.10`, `2026.11.27.1`, `1.3.0-rc.1`), the highest version wins and tags without a version are
 * ignored; equal versions (`1.2` and `1.2.0`) are decided by date. When no tag carries a version, the newest by
 * date wins: the tagger date of an annotated tag, the committer date of a lightweight one; then the name.
 */
import { refNameProblem, shortTagPattern } from '../config/git-names.js';

/** A tag the remote advertises. */
export interface RemoteTag {
  name: string;
  /** The object the tag ref points at (a tag object for an annotated tag, a commit for a lightweight one). */
  object: string;
}

/** A version read from a tag name: numeric dot-separated fields and an optional semver pre-release. */
export interface TagVersion {
  fields: string[];
  prerelease: string[];
}

/** What to fetch for a tag pattern, and how to decide between the fetched tags. */
export interface TagCandidates {
  /** `version`: the candidates share the highest version; `date`: no tag carries a version. */
  by: 'version' | 'date';
  /** The tags to fetch; the newest by date among them wins when there are several. */
  candidates: RemoteTag[];
  /** Matching tags left out because they carry no version while others do. */
  ignored: string[];
}

/** Normalises a tag pattern (`prod-*` or `refs/tags/prod-*`) to the short form; throws on an unusable one. */
export function normaliseTagPattern(pattern: string): string {
  try {
    return shortTagPattern(pattern);
  } catch (error) {
    throw new Error(`tag pattern ${JSON.stringify(pattern)} ${(error as Error).message} (expected a glob such as prod-*)`);
  }
}

/** A RegExp for a tag glob: `*` and `?` never match `/`, `[...]` is a class; each `*` is a capture group. */
export function tagGlob(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === '*') source += '([^/]*)';
    else if (char === '?') source += '[^/]';
    else if (char === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) source += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = end;
      }
    } else source += char.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/**
 * Parses `git ls-remote --tags` output: one tag per name, peeled lines (`^{}`) folded in. A name git itself would
 * refuse (`a*`, `..`) is dropped: a server may advertise anything, and such a name would make a refspec a pattern.
 */
export function parseLsRemoteTags(output: string): RemoteTag[] {
  const tags = new Map<string, RemoteTag>();
  for (const line of output.split('\n')) {
    const match = /^([0-9a-f]{40,64})\trefs\/tags\/(.+)$/.exec(line.trim());
    if (!match) continue;
    const [, object, ref] = match as unknown as [string, string, string];
    if (ref.endsWith('^{}') || refNameProblem(`refs/tags/${ref}`) !== undefined) continue;
    tags.set(ref, { name: ref, object });
  }
  return [...tags.values()];
}

const VERSION = /^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** The version the `*` of the pattern matched in a tag name (`prod-*`, `prod-1.2.10` → 1.2.10), if any. */
export function tagVersion(name: string, glob: RegExp): TagVersion | undefined {
  const match = glob.exec(name);
  if (!match) return undefined;
  const matched = match.slice(1).filter((part) => part !== '').join('.');
  const version = VERSION.exec(matched);
  if (!version) return undefined;
  return {
    fields: (version[1] as string).split('.').map((field) => field.replace(/^0+(?=\d)/, '')),
    prerelease: version[2] ? version[2].split('.') : [],
  };
}

function compareNumeric(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function compareIdentifier(a: string, b: string): number {
  const numericA = /^\d+$/.test(a);
  const numericB = /^\d+$/.test(b);
  if (numericA && numericB) return compareNumeric(a.replace(/^0+(?=\d)/, ''), b.replace(/^0+(?=\d)/, ''));
  if (numericA !== numericB) return numericA ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders versions: fields numerically (a missing field is 0), then a release above its pre-releases (semver). */
export function compareVersions(a: TagVersion, b: TagVersion): number {
  for (let i = 0; i < Math.max(a.fields.length, b.fields.length); i++) {
    const order = compareNumeric(a.fields[i] ?? '0', b.fields[i] ?? '0');
    if (order !== 0) return order;
  }
  if (a.prerelease.length === 0 || b.prerelease.length === 0) return b.prerelease.length - a.prerelease.length;
  for (let i = 0; i < Math.max(a.prerelease.length, b.prerelease.length); i++) {
    const left = a.prerelease[i];
    const right = b.prerelease[i];
    if (left === undefined || right === undefined) return left === undefined ? -1 : 1;
    const order = compareIdentifier(left, right);
    if (order !== 0) return order;
  }
  return 0;
}

/** The tags matching the pattern that may be the newest: the highest version (ties kept), or all for dates. */
export function tagCandidates(tags: RemoteTag[], pattern: string): TagCandidates {
  const glob = tagGlob(pattern);
  const matching = tags.filter((tag) => glob.test(tag.name));
  const versioned = matching
    .map((tag) => ({ tag, version: tagVersion(tag.name, glob) }))
    .filter((entry): entry is { tag: RemoteTag; version: TagVersion } => entry.version !== undefined);
  if (versioned.length === 0) return { by: 'date', candidates: matching, ignored: [] };
  versioned.sort((a, b) => compareVersions(b.version, a.version));
  const best = (versioned[0] as { version: TagVersion }).version;
  return {
    by: 'version',
    candidates: versioned.filter((entry) => compareVersions(entry.version, best) === 0).map((entry) => entry.tag),
    ignored: matching.filter((tag) => !versioned.some((entry) => entry.tag === tag)).map((tag) => tag.name),
  };
}

/** The newest tag by date (seconds since the epoch), then by the name's version-aware order. */
export function newestByDate(dated: { name: string; date: number }[]): string | undefined {
  const sorted = [...dated].sort(
    (a, b) => b.date - a.date || b.name.localeCompare(a.name, 'en', { numeric: true }),
  );
  return sorted[0]?.name;
}
