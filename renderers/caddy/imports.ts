/**
 * Makes a staged Caddy tree self-contained for `caddy validate`: absolute `import /etc/caddy/...` lines would read
 * the live host's files, so a validation copy rewrites them to point into the copy instead.
 */
import { join } from 'node:path';
import { writeFileTree } from '../../reconciler/host/file-tree.js';
import { isUnder } from '../../reconciler/host/path-policy.js';
import type { RenderedFile } from '../types.js';

/** The root every absolute import that must stay inside the staged tree starts with. */
export const CADDY_ROOT = '/etc/caddy';

const ABSOLUTE_IMPORT = /(^[ \t]*|\{[ \t]*)import([ \t]+"?)\/etc\/caddy(?=[/"\s]|$)/gm;

/**
 * Rewrites `import /etc/caddy/...` (also quoted, also right after `{` of a one-line block) to
 * `import <root>/etc/caddy/...`; `import` must be the first token, so comments and strings stay as they are.
 */
export function rewriteAbsoluteImports(content: string, root: string): string {
  return content.replace(ABSOLUTE_IMPORT, (_match, before: string, gap: string) => {
    return `${before}import${gap}${root}${CADDY_ROOT}`;
  });
}

/**
 * Writes every file under /etc/caddy (of any kind) to `<root>/etc/caddy/...` with its absolute imports rewritten.
 * The tree keeps its shape, so relative imports (resolved from the importing file's directory) still work and line
 * numbers stay the same.
 */
export async function writeValidationTree(root: string, files: RenderedFile[]): Promise<void> {
  const caddyFiles = files.filter((file) => isUnder(file.path, CADDY_ROOT));
  writeFileTree(root, caddyFiles.map((file) => ({ path: file.path, content: rewriteAbsoluteImports(file.content, root) })), { dirMode: 0o777, fileMode: 0o644 });
}

/** A Caddyfile that imports every site file, for hosts whose main Caddyfile the repo does not manage. */
export function wrapperCaddyfile(root: string, sites: RenderedFile[]): string {
  const lines = [...sites]
    .map((file) => file.path)
    .sort()
    .map((path) => `import "${join(root, path)}"`);
  return `${lines.join('\n')}\n`;
}
