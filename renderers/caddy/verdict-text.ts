/**
 * What of a Caddyfile `caddy validate` judges, for the verdict cache: its lines without the comment lines and the
 * blank ones. Hosts of one role often differ in a comment only ("# Managed by edge-reconciler on edge-017"); such
 * files share a verdict. This is only safe where a `#` at the start of a line surely begins a comment that ends
 * with it, so a file with anything that could carry a line into the next is hashed whole: quotes and backquotes
 * (tokens that span lines), a backslash (an escaped newline), `<<` (a heredoc, whose lines are text) and `{$` (an
 * environment placeholder, substituted before the file is read). So is a file with a comment line that mentions
 * `import`: the import policy (import-policy.ts), which runs before caddy, reads such lines too.
 */

/** What could make a `#` line not a comment, or a comment reach past its line. */
const UNSAFE = /["`\\]|<<|\{\$/;

/** A line that is blank or only a comment. */
const NOTHING_TO_READ = /^[ \t\r]*(?:#|$)/;

/** `content` without its comment lines and blank lines, or whole where that could change a verdict. */
export function caddyVerdictText(content: string): string {
  if (UNSAFE.test(content)) return content;
  const kept: string[] = [];
  for (const line of content.split('\n')) {
    if (!NOTHING_TO_READ.test(line)) kept.push(line);
    else if (line.includes('import')) return content;
  }
  return kept.join('\n');
}
