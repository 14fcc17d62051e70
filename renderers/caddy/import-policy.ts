/**
 * Keeps Caddy's `import` inside the staged tree: an import of a path outside /etc/caddy (the host's secrets dir,
 * /etc/shadow) would make `caddy validate` read that file and print it in its error. Every `import` of every file
 * under /etc/caddy is resolved the way caddy resolves it (a snippet name, else a path or glob relative to the
 * importing file) and refused unless it stays under /etc/caddy. Environment placeholders (`{$VAR}`) in an import
 * are refused too: their value is the validating machine's, not the host's.
 */
import { posix } from 'node:path';
import type { Problem } from '../../reconciler/errors.js';
import { isUnder } from '../../reconciler/host/path-policy.js';
import type { RenderedFile } from '../types.js';
import { CADDY_ROOT } from './imports.js';
import { originOf } from './output.js';

const IMPORT = /(?:^|[{;])[ \t]*import[ \t]+("[^"]*"|`[^`]*`|\S+)/gm;
const SNIPPET = /^[ \t]*\(([^()\s]+)\)[ \t]*\{/gm;

/** Every import of the caddy tree that leaves /etc/caddy, as CADDY_IMPORT_OUTSIDE problems. */
export function importProblems(files: readonly RenderedFile[]): Problem[] {
  const caddyFiles = files.filter((file) => isUnder(file.path, CADDY_ROOT));
  const snippets = new Set(caddyFiles.flatMap((file) => [...file.content.matchAll(SNIPPET)].map((match) => match[1] ?? '')));
  const problems: Problem[] = [];
  for (const file of caddyFiles) {
    for (const match of file.content.matchAll(IMPORT)) {
      const target = (match[1] ?? '').replace(/^["`]|["`]$/g, '');
      if (snippets.has(target)) continue;
      const line = file.content.slice(0, match.index).split('\n').length;
      const reason = outsideReason(file.path, target);
      if (!reason) continue;
      problems.push({
        code: 'CADDY_IMPORT_OUTSIDE',
        file: originOf(file),
        ...(file.template ? {} : file.source.line ? { line: file.source.line } : {}),
        message: `${file.path} line ${line}: import "${target}" ${reason}; imports must stay under ${CADDY_ROOT}`,
      });
    }
  }
  return problems;
}

/** Why an import target is refused, or undefined when it stays under /etc/caddy. */
function outsideReason(importer: string, target: string): string | undefined {
  if (target === '') return 'is empty';
  if (/[{}$]/.test(target)) return 'uses a placeholder, whose value is not known until caddy runs';
  const resolved = posix.normalize(posix.isAbsolute(target) ? target : posix.join(posix.dirname(importer), target));
  const fixed = resolved.split('/').findIndex((segment) => /[*?[\]]/.test(segment));
  const base = fixed === -1 ? resolved : resolved.split('/').slice(0, fixed).join('/') || '/';
  if (!isUnder(base, CADDY_ROOT)) return `resolves to ${resolved}`;
  return undefined;
}
