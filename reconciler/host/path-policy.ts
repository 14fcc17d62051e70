/**
 * The path policy: every target a repo may write is confined to an allow-list of roots, and each kind to its own
 * root. `..`, relative paths and odd spellings are refused before anything is rendered to disk.
 */
import { posix } from 'node:path';
import type { Problem } from '../errors.js';
import type { ResourceKind } from '../model.js';

/** The roots a host lets the repo write under. */
export interface PathPolicy {
  roots: string[];
}

/** Where each kind must put its files. `file` may write under any allowed root. */
export const KIND_ROOTS: Record<ResourceKind, string | undefined> = {
  app: '/srv/apps',
  caddy: '/etc/caddy',
  'env-file': '/etc/edge-reconciler/env',
  file: undefined,
  'systemd-unit': '/etc/systemd/system',
  ufw: '/etc/edge-reconciler/ufw',
};

/** The default allow-list: the agent's own config, units, Caddy, and the usual drop-in directories. */
export const DEFAULT_PATH_POLICY: PathPolicy = {
  roots: [
    '/etc/caddy',
    '/etc/edge-reconciler/env',
    '/etc/edge-reconciler/ufw',
    '/etc/logrotate.d',
    '/etc/sysctl.d',
    '/etc/systemd/journald.conf.d',
    '/etc/systemd/system',
    '/etc/tmpfiles.d',
    '/srv/apps',
  ],
};

/** True when `path` is `root` itself or lies below it. */
export function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** Checks one target path; returns the problem (without file/line, which the caller knows) or undefined. */
export function checkTargetPath(
  path: string,
  kind: ResourceKind,
  policy: PathPolicy,
): Omit<Problem, 'file'> | undefined {
  if (!path.startsWith('/')) {
    return { code: 'PATH_NOT_ABSOLUTE', message: `target "${path}" is not an absolute path` };
  }
  if ([...path].some((char) => (char.codePointAt(0) ?? 0) < 32 || char === '\u007f')) {
    return { code: 'PATH_TRAVERSAL', message: `target ${JSON.stringify(path)} holds a control character (a newline, a tab, ...)` };
  }
  if (path.split('/').some((segment) => segment === '..' || segment === '.')) {
    return { code: 'PATH_TRAVERSAL', message: `target "${path}" contains "." or ".." segments` };
  }
  if (posix.normalize(path) !== path || path.endsWith('/')) {
    return { code: 'PATH_TRAVERSAL', message: `target "${path}" is not in normal form` };
  }
  if (!policy.roots.some((root) => isUnder(path, root) && path !== root)) {
    return {
      code: 'PATH_OUTSIDE_ROOTS',
      message: `target ${path} is outside the allowed roots (${policy.roots.join(', ')})`,
    };
  }
  const kindRoot = KIND_ROOTS[kind];
  if (kindRoot && !isUnder(path, kindRoot)) {
    return { code: 'PATH_WRONG_ROOT', message: `${kind} target ${path} must be under ${kindRoot}` };
  }
  const owner = ownerKind(path);
  if (owner && owner !== kind) {
    return {
      code: 'PATH_KIND_OWNED',
      message: `target ${path} belongs to kind ${owner} (everything under ${KIND_ROOTS[owner] ?? ''}): declare it as ${owner}, so that its validator checks it`,
    };
  }
  return undefined;
}

/** The kind whose root holds `path` (the deepest root when roots nest), if any. */
export function ownerKind(path: string): ResourceKind | undefined {
  let best: { kind: ResourceKind; root: string } | undefined;
  for (const [kind, root] of Object.entries(KIND_ROOTS) as [ResourceKind, string | undefined][]) {
    if (root && isUnder(path, root) && (!best || root.length > best.root.length)) best = { kind, root };
  }
  return best?.kind;
}
