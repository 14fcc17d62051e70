/**
 * Turns the output of `caddy validate` into problems. Only the `Error:` line is the verdict (stderr also carries
 * JSON log lines); paths inside the validation tree are mapped back to the targets and the files they came from,
 * whatever form the location takes (`file:3: ...`, `file:3 - Error during parsing: ...`, `file:3 - Syntax error:
 * ...`), and the rendered line back to the line of the template that produced it, where that line is certain.
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
  /** The repo's templates by repo-relative path, to map a rendered line back to its template line. */
  templates?: ReadonlyMap<string, string>;
}

const LOCATION = /(\/[^\s:'"]+):(\d+)(?::\s*| - (?:Error during parsing: )?|\b)/g;
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
  // The first location that is a managed file: an error inside an imported file names that file, not its importer.
  const located = [...text.matchAll(LOCATION)].find((match) => context.byPath.has(match[1] ?? ''));
  if (!located) {
    return [{ code: 'CADDY_INVALID', ...fileOf(context.fallback), message: `${context.subject}: ${text}` }];
  }
  const [whole, target = '', line = ''] = located;
  const before = text.slice(0, located.index);
  const after = text.slice((located.index ?? 0) + whole.length);
  const file = context.byPath.get(target);
  const templateLine = file ? templateLineOf(file, Number(line), context.templates) : undefined;
  return [
    {
      code: 'CADDY_INVALID',
      ...fileOf(file),
      ...(templateLine ? { line: templateLine } : {}),
      message: `${target} line ${line}: ${before}${after}`.replace(/:\s*$/, ''),
    },
  ];
}

/**
 * The template line that produced line `outputLine` of a rendered file, when it is certain: the template renders
 * line for line (same line count, that line unchanged), or the rendered line's text occurs on exactly one template
 * line. Undefined otherwise (the message still names the rendered line).
 */
export function templateLineOf(file: RenderedFile, outputLine: number, templates?: ReadonlyMap<string, string>): number | undefined {
  const source = file.template ? templates?.get(file.template) : undefined;
  if (source === undefined) return undefined;
  const rendered = file.content.split('\n');
  const lines = source.split('\n');
  const wanted = rendered[outputLine - 1]?.trim();
  if (wanted === undefined || wanted === '') return undefined;
  if (lines.length === rendered.length && lines[outputLine - 1]?.trim() === wanted) return outputLine;
  const same = lines.flatMap((text, index) => (text.trim() === wanted ? [index + 1] : []));
  return same.length === 1 ? same[0] : undefined;
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
