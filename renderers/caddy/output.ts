/**
 * Turns the output of `caddy validate` into problems. Only the `Error:` line is the verdict (stderr also carries
 * JSON log lines); paths inside the validation tree are mapped back to the targets and the files they came from.
 */
import type { Problem } from '../../reconciler/errors.js';
import type { RenderedFile } from '../types.js';

/** What the mapping needs to know about one caddy validate run. */
export interface CaddyRunContext {
  /** Prefixes to strip from paths in caddy's messages (the validation tree, the staging dir). */
  prefixes: string[];
  /** The wrapper Caddyfile, when one was used, and how to call it in messages. */
  wrapper?: string;
  /** Every rendered file of the host, by target path. */
  byPath: ReadonlyMap<string, RenderedFile>;
  /** The file an unlocated error belongs to (the main Caddyfile, or the only site file), if any. */
  fallback?: RenderedFile;
  /** What was validated, for unlocated errors: `/etc/caddy/Caddyfile` or `the site files ...`. */
  subject: string;
}

const LOCATION = /(\/[^\s:]+):(\d+)(?:: | - Error during parsing: )/;
const ADAPTING = /^adapting config using caddyfile: /;

/** The repo file a rendered file came from: its template, or the declaration holding its inline content. */
export function originOf(file: RenderedFile): string {
  return file.template ?? file.source.file;
}

/** Problems from one caddy run: none when it exits 0, else one CADDY_INVALID for the `Error:` line. */
export function caddyProblems(result: { exitCode?: number; stdout: string; stderr: string }, context: CaddyRunContext): Problem[] {
  if (result.exitCode === 0) return [];
  const lines = `${result.stderr}\n${result.stdout}`.split('\n').map((line) => line.trim());
  const errorLine = lines.find((line) => line.startsWith('Error: '));
  if (!errorLine) {
    const last = lines.filter((line) => line.length > 0 && !line.startsWith('{')).pop() ?? 'no output';
    return [
      {
        code: 'CADDY_INVALID',
        ...fileOf(context.fallback),
        message: `caddy validate of ${context.subject} failed (exit ${result.exitCode ?? 'none'}): ${unstage(last, context)}`,
      },
    ];
  }
  const text = unstage(errorLine.slice('Error: '.length), context).replace(ADAPTING, '');
  const located = LOCATION.exec(text);
  if (!located) {
    return [{ code: 'CADDY_INVALID', ...fileOf(context.fallback), message: `${context.subject}: ${text}` }];
  }
  const [whole, target = '', line = ''] = located;
  const before = text.slice(0, located.index);
  const after = text.slice(located.index + whole.length);
  return [
    {
      code: 'CADDY_INVALID',
      ...fileOf(context.byPath.get(target)),
      message: `${target} line ${line}: ${before}${after}`,
    },
  ];
}

function fileOf(file: RenderedFile | undefined): { file?: string } {
  return file ? { file: originOf(file) } : {};
}

/** Removes the validation tree and staging prefixes from caddy's text, so it names host paths. */
function unstage(text: string, context: CaddyRunContext): string {
  let out = text;
  if (context.wrapper) out = out.split(context.wrapper).join('(wrapper importing the site files)');
  for (const prefix of context.prefixes) out = out.split(prefix).join('');
  return out;
}
